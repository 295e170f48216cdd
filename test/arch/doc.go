// Package arch enforces the import rules of docs/architecture.md and that
// every package says what it is.
package arch
