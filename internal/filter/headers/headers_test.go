package headers

import (
	"net/http"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"github.com/google/go-cmp/cmp"
)

func TestCompileEmpty(t *testing.T) {
	if m := Compile(nil); m != nil {
		t.Errorf("Compile(nil) = %v, want nil", m)
	}
	if m := Compile(&ir.HeaderModifier{}); m != nil {
		t.Errorf("Compile(empty) = %v, want nil", m)
	}
	h := http.Header{"A": {"1"}}
	var m *Modifier
	m.Apply(h) // must not panic
	if diff := cmp.Diff(http.Header{"A": {"1"}}, h); diff != "" {
		t.Errorf("nil Apply changed headers (-want +got):\n%s", diff)
	}
}

// The cases follow the Gateway API HTTPHeaderFilter examples and the
// conformance tests httproute-request-header-modifier and
// httproute-response-header-modifier (a value list [a b] is what the echo
// server reports as "a,b").
func TestApply(t *testing.T) {
	tests := []struct {
		name string
		mod  ir.HeaderModifier
		in   http.Header
		want http.Header
	}{{
		name: "set absent",
		mod:  ir.HeaderModifier{Set: []ir.Header{{Name: "X-Header-Set", Value: "set-overwrites-values"}}},
		in:   http.Header{"Some-Other-Header": {"val"}},
		want: http.Header{"Some-Other-Header": {"val"}, "X-Header-Set": {"set-overwrites-values"}},
	}, {
		name: "set overwrites every value",
		mod:  ir.HeaderModifier{Set: []ir.Header{{Name: "my-header", Value: "bar"}}},
		in:   http.Header{"My-Header": {"foo", "foo2"}},
		want: http.Header{"My-Header": {"bar"}},
	}, {
		name: "add absent",
		mod:  ir.HeaderModifier{Add: []ir.Header{{Name: "X-Header-Add", Value: "add-appends-values"}}},
		in:   http.Header{"Some-Other-Header": {"val"}},
		want: http.Header{"Some-Other-Header": {"val"}, "X-Header-Add": {"add-appends-values"}},
	}, {
		name: "add appends",
		mod:  ir.HeaderModifier{Add: []ir.Header{{Name: "my-header", Value: "bar,baz"}}},
		in:   http.Header{"My-Header": {"foo"}},
		want: http.Header{"My-Header": {"foo", "bar,baz"}},
	}, {
		name: "remove",
		mod:  ir.HeaderModifier{Remove: []string{"my-header1", "my-header3"}},
		in:   http.Header{"My-Header1": {"foo"}, "My-Header2": {"bar"}, "My-Header3": {"baz"}},
		want: http.Header{"My-Header2": {"bar"}},
	}, {
		name: "remove absent",
		mod:  ir.HeaderModifier{Remove: []string{"X-Nope"}},
		in:   http.Header{"A": {"1"}},
		want: http.Header{"A": {"1"}},
	}, {
		name: "multiple",
		mod: ir.HeaderModifier{
			Set:    []ir.Header{{Name: "X-Header-Set-1", Value: "header-set-1"}, {Name: "X-Header-Set-2", Value: "header-set-2"}},
			Add:    []ir.Header{{Name: "X-Header-Add-1", Value: "header-add-1"}, {Name: "X-Header-Add-2", Value: "header-add-2"}, {Name: "X-Header-Add-3", Value: "header-add-3"}},
			Remove: []string{"X-Header-Remove-1", "X-Header-Remove-2"},
		},
		in: http.Header{
			"X-Header-Set-2":    {"set-val-2"},
			"X-Header-Add-2":    {"add-val-2"},
			"X-Header-Remove-2": {"remove-val-2"},
			"X-Header-Remove-1": {"val"},
			"Another-Header":    {"another-header-val"},
		},
		want: http.Header{
			"X-Header-Set-1": {"header-set-1"},
			"X-Header-Set-2": {"header-set-2"},
			"X-Header-Add-1": {"header-add-1"},
			"X-Header-Add-2": {"add-val-2", "header-add-2"},
			"X-Header-Add-3": {"header-add-3"},
			"Another-Header": {"another-header-val"},
		},
	}, {
		name: "case insensitivity",
		mod: ir.HeaderModifier{
			Set: []ir.Header{{Name: "X-Header-Set", Value: "header-set"}},
			Add: []ir.Header{
				{Name: "X-Header-Add", Value: "header-add"},
				{Name: "x-lowercase-add", Value: "lowercase-add"},
				{Name: "x-Mixedcase-ADD-1", Value: "mixedcase-add-1"},
				{Name: "X-mixeDcase-add-2", Value: "mixedcase-add-2"},
				{Name: "X-UPPERCASE-ADD", Value: "uppercase-add"},
			},
			Remove: []string{"X-Header-Remove"},
		},
		// As net/http parses "x-header-set: ..." off the wire.
		in: http.Header{
			"X-Header-Set":    {"original-val-set"},
			"X-Header-Add":    {"original-val-add"},
			"X-Header-Remove": {"original-val-remove"},
			"Another-Header":  {"another-header-val"},
		},
		want: http.Header{
			"X-Header-Set":      {"header-set"},
			"X-Header-Add":      {"original-val-add", "header-add"},
			"X-Lowercase-Add":   {"lowercase-add"},
			"X-Mixedcase-Add-1": {"mixedcase-add-1"},
			"X-Mixedcase-Add-2": {"mixedcase-add-2"},
			"X-Uppercase-Add":   {"uppercase-add"},
			"Another-Header":    {"another-header-val"},
		},
	}, {
		name: "first of equivalent names wins",
		mod: ir.HeaderModifier{
			Set: []ir.Header{{Name: "foo", Value: "1"}, {Name: "Foo", Value: "2"}},
			Add: []ir.Header{{Name: "bar", Value: "1"}, {Name: "BAR", Value: "2"}},
		},
		in:   http.Header{},
		want: http.Header{"Foo": {"1"}, "Bar": {"1"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Compile(&tt.mod).Apply(tt.in)
			if diff := cmp.Diff(tt.want, tt.in); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

// Values installed by Apply are shared between requests; a later Add on one
// request must not show up in another.
func TestSharedValuesNotAliased(t *testing.T) {
	m := Compile(&ir.HeaderModifier{
		Set: []ir.Header{{Name: "X-Set", Value: "s"}},
		Add: []ir.Header{{Name: "X-Add", Value: "a"}},
	})
	h1, h2 := http.Header{}, http.Header{}
	m.Apply(h1)
	m.Apply(h2)
	h1.Add("X-Set", "more")
	h1.Add("X-Add", "more")
	want := http.Header{"X-Set": {"s"}, "X-Add": {"a"}}
	if diff := cmp.Diff(want, h2); diff != "" {
		t.Errorf("second request changed by the first (-want +got):\n%s", diff)
	}
	h3 := http.Header{}
	m.Apply(h3)
	if diff := cmp.Diff(want, h3); diff != "" {
		t.Errorf("later request changed by the first (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     *ir.HeaderModifier
		wantErr string // substring; "" means valid
	}{
		{"nil", nil, ""},
		{"empty", &ir.HeaderModifier{}, ""},
		{"valid", &ir.HeaderModifier{
			Set:    []ir.Header{{Name: "X-A", Value: "a\tb c"}},
			Add:    []ir.Header{{Name: "x-b", Value: "1,2"}},
			Remove: []string{"X-C"},
		}, ""},
		{"empty name", &ir.HeaderModifier{Set: []ir.Header{{Name: "", Value: "x"}}}, "invalid header name"},
		{"space in name", &ir.HeaderModifier{Add: []ir.Header{{Name: "X A", Value: "x"}}}, "invalid header name"},
		{"colon in name", &ir.HeaderModifier{Remove: []string{"X:A"}}, "invalid header name"},
		{"CRLF in value", &ir.HeaderModifier{Set: []ir.Header{{Name: "X-A", Value: "a\r\nEvil: 1"}}}, "invalid value"},
		{"NUL in value", &ir.HeaderModifier{Add: []ir.Header{{Name: "X-A", Value: "a\x00"}}}, "invalid value"},
		{"set and add same name", &ir.HeaderModifier{
			Set: []ir.Header{{Name: "X-A", Value: "1"}},
			Add: []ir.Header{{Name: "x-a", Value: "2"}},
		}, "already used by set"},
		{"set twice", &ir.HeaderModifier{
			Set: []ir.Header{{Name: "foo", Value: "1"}, {Name: "Foo", Value: "2"}},
		}, "already used by set"},
		{"add and remove same name", &ir.HeaderModifier{
			Add:    []ir.Header{{Name: "X-A", Value: "1"}},
			Remove: []string{"X-A"},
		}, "already used by add"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.mod)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func BenchmarkApply(b *testing.B) {
	m := Compile(&ir.HeaderModifier{
		Set:    []ir.Header{{Name: "X-Set", Value: "s"}},
		Add:    []ir.Header{{Name: "X-Add", Value: "a"}},
		Remove: []string{"X-Remove"},
	})
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}, "X-Set": {"old"}}
	b.ReportAllocs()
	for b.Loop() {
		h["X-Remove"] = h["Accept"]
		m.Apply(h)
		delete(h, "X-Add")
	}
}

// TestApplyAllocs is the allocation budget of the hot path: setting,
// adding a new header and removing must not allocate.
func TestApplyAllocs(t *testing.T) {
	m := Compile(&ir.HeaderModifier{
		Set:    []ir.Header{{Name: "X-Set", Value: "s"}},
		Add:    []ir.Header{{Name: "X-Add", Value: "a"}},
		Remove: []string{"X-Remove"},
	})
	h := http.Header{"Accept": {"*/*"}, "X-Set": {"old"}, "X-Add": nil}
	allocs := testing.AllocsPerRun(100, func() {
		h["X-Remove"] = h["Accept"]
		m.Apply(h)
		delete(h, "X-Add")
	})
	if allocs != 0 {
		t.Errorf("Apply allocates %v times per run, want 0", allocs)
	}
}
