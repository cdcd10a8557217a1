// Package docscheck holds tests that keep docs/ true to the code where a
// document states values the code defines: the size caps of
// docs/limits.md. It has no code of its own.
package docscheck
