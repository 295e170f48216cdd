package translate

// refFrom is the referencing side of a cross-namespace reference.
type refFrom struct {
	group, kind, namespace string
}

// refTo is the referenced object.
type refTo struct {
	group, kind, namespace, name string
}

// permitted reports whether from may reference to: always within one
// namespace, otherwise only when a ReferenceGrant in the target namespace
// lists both (Gateway API: entries of from and to are each ORed; a To
// without name allows every object of that kind). v1 and v1beta1 grants
// are decoded alike.
func (t *translator) permitted(from refFrom, to refTo) bool {
	if from.namespace == to.namespace {
		return true
	}
	for _, g := range t.grants[to.namespace] {
		fromOK := false
		for _, f := range g.Spec.From {
			if string(f.Group) == from.group && string(f.Kind) == from.kind && string(f.Namespace) == from.namespace {
				fromOK = true
				break
			}
		}
		if !fromOK {
			continue
		}
		for _, gt := range g.Spec.To {
			if string(gt.Group) != to.group || string(gt.Kind) != to.kind {
				continue
			}
			if gt.Name == nil || *gt.Name == "" || string(*gt.Name) == to.name {
				return true
			}
		}
	}
	return false
}
