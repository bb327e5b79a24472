package config

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Secrecy is structural, as in Terraform: env() marks its result
// sensitive, cty carries the mark through every operator, template and
// function call, and decoding refuses a marked value in any attribute that
// is not declared secret. A secret attribute (password) becomes a Secret,
// which never prints. Every other attribute may end up in a plan, a log
// line or an error, so it must be written literally.

// markKind is the type of the marks this package puts on values.
type markKind string

// sensitive marks a value that came (even in part) from env().
const sensitive markKind = "sensitive"

// secretAttrs are the attributes, per block, that may receive a value
// from env(). Everything else is printed somewhere.
var secretAttrs = map[string]bool{"password": true}

// secretAttrList is secretAttrs for messages.
const secretAttrList = `password (in target "ldap" and target "winrm"), url and secret (in notify "webhook"), url (in state "postgres")`

// guardBody wraps a block body for gohcl so that every attribute value is
// checked for the sensitive mark before it is decoded. prefix names nested
// blocks in messages ("break_glass.").
func guardBody(body hcl.Body, prefix string) hcl.Body {
	return &guardedBody{Body: body, prefix: prefix, allow: secretAttrs}
}

// guardBodyAllowing is guardBody for a block whose secret attributes are
// others than a target's password (a notify's url and secret, a state's url).
func guardBodyAllowing(body hcl.Body, names ...string) hcl.Body {
	allow := map[string]bool{}
	for _, n := range names {
		allow[n] = true
	}
	return &guardedBody{Body: body, allow: allow}
}

type guardedBody struct {
	hcl.Body
	prefix string
	allow  map[string]bool // attributes that may carry env() values
}

func (b *guardedBody) Content(s *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	c, diags := b.Body.Content(s)
	return b.wrap(c), diags
}

func (b *guardedBody) PartialContent(s *hcl.BodySchema) (*hcl.BodyContent, hcl.Body, hcl.Diagnostics) {
	c, rest, diags := b.Body.PartialContent(s)
	return b.wrap(c), &guardedBody{Body: rest, prefix: b.prefix, allow: b.allow}, diags
}

func (b *guardedBody) JustAttributes() (hcl.Attributes, hcl.Diagnostics) {
	attrs, diags := b.Body.JustAttributes()
	return b.wrapAttrs(attrs), diags
}

func (b *guardedBody) wrap(c *hcl.BodyContent) *hcl.BodyContent {
	if c == nil {
		return nil
	}
	out := *c
	out.Attributes = b.wrapAttrs(c.Attributes)
	out.Blocks = make(hcl.Blocks, len(c.Blocks))
	for i, blk := range c.Blocks {
		nb := *blk
		nb.Body = &guardedBody{Body: blk.Body, prefix: b.prefix + blk.Type + ".", allow: b.allow}
		out.Blocks[i] = &nb
	}
	return &out
}

func (b *guardedBody) wrapAttrs(attrs hcl.Attributes) hcl.Attributes {
	out := make(hcl.Attributes, len(attrs))
	for name, a := range attrs {
		na := *a
		if !b.allow[name] {
			na.Expr = guardExpr(a.Expr, b.prefix+name)
		}
		out[name] = &na
	}
	return out
}

// guardExpr wraps an expression whose value must not carry the sensitive
// mark: evaluating it reports an error instead of the value.
func guardExpr(expr hcl.Expression, name string) hcl.Expression {
	return &guardedExpr{Expression: expr, name: name}
}

type guardedExpr struct {
	hcl.Expression
	name string
}

// UnwrapExpression lets hcl.ExprList and hcl.AbsTraversalForExpr see the
// expression as written.
func (e *guardedExpr) UnwrapExpression() hcl.Expression { return e.Expression }

func (e *guardedExpr) Value(ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	v, diags := e.Expression.Value(ctx)
	if !v.ContainsMarked() {
		if !diags.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type().IsTupleType() {
			return e.stringList(v, diags)
		}
		return v, diags
	}
	// The value is dropped here, before anything can print it; an unknown
	// value makes the decoder stop without echoing it.
	diags = append(diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "env() value outside a password",
		Detail: fmt.Sprintf("%s gets its value from env(). env() values are secret and may only be used in %s, which is never printed; "+
			"%s appears in plans, logs and errors, so use a literal.", e.name, secretAttrList, e.name),
		Subject: e.Expression.Range().Ptr(),
	})
	return cty.UnknownVal(v.Type()), diags
}

// stringList turns a tuple (a list as written, [...]) into a list of
// strings in one pass. Every list attribute of the language is a list of
// strings; left to cty, the conversion unifies the element types with a
// sort that compares every pair (quadratic: 20,000 members took 25 s). A
// number or bool becomes a string as cty would make it; anything else
// is an error at the attribute.
func (e *guardedExpr) stringList(v cty.Value, diags hcl.Diagnostics) (cty.Value, hcl.Diagnostics) {
	n := v.LengthInt()
	if n == 0 {
		return cty.ListValEmpty(cty.String), diags
	}
	out := make([]cty.Value, 0, n)
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		ty := el.Type()
		if el.IsNull() || !el.IsKnown() || !ty.IsPrimitiveType() {
			return cty.DynamicVal, append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unsuitable value type",
				Detail:   fmt.Sprintf("%s must be a list of strings; element %d is not a string.", e.name, len(out)),
				Subject:  e.Expression.Range().Ptr(),
			})
		}
		switch {
		case ty == cty.Number && el.AsBigFloat().IsInt():
			// What cty's conversion gives, without its slow exact
			// formatting of every integer.
			if i, acc := el.AsBigFloat().Int64(); acc == big.Exact {
				el = cty.StringVal(strconv.FormatInt(i, 10))
				break
			}
			el, _ = convert.Convert(el, cty.String)
		case ty != cty.String:
			el, _ = convert.Convert(el, cty.String)
		}
		out = append(out, el)
	}
	return cty.ListVal(out), diags
}
