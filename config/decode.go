package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// decodeBody decodes a block body into val (a pointer to a struct tagged
// for gohcl, with attribute, optional and block fields), as
// gohcl.DecodeBody does, with two differences: every attribute value is
// checked for env()'s sensitive mark (guardExpr) unless the attribute is
// secret, and the struct's schema and field layout are worked out once per
// type, not once per block (gohcl's reflection over the tags was a tenth
// of loading 5,000 groups and 10,000 grants).
func decodeBody(body hcl.Body, ctx *hcl.EvalContext, val any, prefix string) hcl.Diagnostics {
	rv := reflect.ValueOf(val).Elem()
	info := layoutOf(rv.Type())
	if sb, ok := body.(*hclsyntax.Body); ok && info.fits(sb) {
		// Content would find nothing to say: take the expressions from
		// the syntax tree rather than have it copy every attribute.
		return decodeContent(rv, info, func(name string) hcl.Expression {
			if a := sb.Attributes[name]; a != nil {
				return a.Expr
			}
			return nil
		}, nil, ctx, prefix, nil)
	}
	content, diags := body.Content(info.schema)
	if content == nil {
		return diags
	}
	return decodeContent(rv, info, func(name string) hcl.Expression {
		if a := content.Attributes[name]; a != nil {
			return a.Expr
		}
		return nil
	}, content.Blocks, ctx, prefix, diags)
}

// fits reports whether Content(l.schema) on sb would return no diagnostic
// and no block: every attribute is in the schema, every required one is
// there, and there are no nested blocks.
func (l *layout) fits(sb *hclsyntax.Body) bool {
	if len(sb.Blocks) > 0 {
		return false
	}
	for name := range sb.Attributes {
		if !l.known[name] {
			return false
		}
	}
	for _, name := range l.required {
		if sb.Attributes[name] == nil {
			return false
		}
	}
	return true
}

// decodeContent sets rv's fields from a body's attribute expressions and
// blocks (see decodeBody).
func decodeContent(rv reflect.Value, info *layout, attr func(name string) hcl.Expression, blocks hcl.Blocks, ctx *hcl.EvalContext, prefix string, diags hcl.Diagnostics) hcl.Diagnostics {
	for _, f := range info.attrs {
		attrExpr := attr(f.name)
		if attrExpr == nil {
			continue
		}
		fv := rv.Field(f.index)
		if f.isExpr {
			fv.Set(reflect.ValueOf(attrExpr))
			continue
		}
		// Most values are plain quoted strings or lists of them: set
		// those directly, without evaluating and converting.
		if lit, ok := literalStrings(attrExpr, fv.Type()); ok {
			fv.Set(lit)
			continue
		}
		expr := attrExpr
		if !secretAttrs[f.name] {
			expr = guardExpr(expr, prefix+f.name)
		}
		diags = append(diags, gohcl.DecodeExpression(expr, ctx, fv.Addr().Interface())...)
	}
	for _, f := range info.blocks {
		var same hcl.Blocks
		for _, b := range blocks {
			if b.Type == f.name {
				same = append(same, b)
			}
		}
		blocks := same
		switch {
		case len(blocks) > 1:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s block", f.name),
				Detail:   fmt.Sprintf("Only one %s block is allowed. Another was defined at %s.", f.name, blocks[0].DefRange.String()),
				Subject:  &blocks[1].DefRange,
			})
		case len(blocks) == 1:
			nv := reflect.New(rv.Field(f.index).Type().Elem())
			diags = append(diags, decodeBody(blocks[0].Body, ctx, nv.Interface(), prefix+f.name+".")...)
			rv.Field(f.index).Set(nv)
		}
	}
	return diags
}

// layout is a decoded struct type's schema and fields.
type layout struct {
	schema   *hcl.BodySchema
	attrs    []fieldInfo
	blocks   []fieldInfo // pointer-to-struct fields, at most one block each
	known    map[string]bool
	required []string
}

type fieldInfo struct {
	name   string
	index  int
	isExpr bool // an hcl.Expression field: kept unevaluated
}

var (
	layouts  sync.Map // reflect.Type -> *layout
	exprType = reflect.TypeOf((*hcl.Expression)(nil)).Elem()
)

func layoutOf(t reflect.Type) *layout {
	if l, ok := layouts.Load(t); ok {
		return l.(*layout)
	}
	schema, _ := gohcl.ImpliedBodySchema(reflect.New(t).Interface())
	l := &layout{schema: schema, known: map[string]bool{}}
	for _, a := range schema.Attributes {
		l.known[a.Name] = true
		if a.Required {
			l.required = append(l.required, a.Name)
		}
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, kind, _ := strings.Cut(f.Tag.Get("hcl"), ",")
		switch {
		case name == "":
		case kind == "block":
			if f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
				panic("config: a block field must be a pointer to a struct: " + t.String() + "." + f.Name)
			}
			l.blocks = append(l.blocks, fieldInfo{name: name, index: i})
		case kind == "" || kind == "optional":
			l.attrs = append(l.attrs, fieldInfo{name: name, index: i, isExpr: f.Type == exprType})
		default:
			panic("config: unsupported hcl tag kind " + kind + " on " + t.String() + "." + f.Name)
		}
	}
	layouts.Store(t, l)
	return l
}

var (
	stringType      = reflect.TypeOf("")
	stringSliceType = reflect.TypeOf([]string(nil))
)

// literalStrings returns the value of expr for a field of type t when expr
// is a quoted string without interpolation (t is string) or a list of
// them (t is []string); ok is false for anything else, which is then
// evaluated.
func literalStrings(expr hcl.Expression, t reflect.Type) (reflect.Value, bool) {
	switch t {
	case stringType:
		if s, ok := literalString(expr); ok {
			return reflect.ValueOf(s), true
		}
	case stringSliceType:
		tup, ok := expr.(*hclsyntax.TupleConsExpr)
		if !ok {
			break
		}
		out := make([]string, len(tup.Exprs))
		for i, e := range tup.Exprs {
			if out[i], ok = literalString(e); !ok {
				return reflect.Value{}, false
			}
		}
		return reflect.ValueOf(out), true
	}
	return reflect.Value{}, false
}

func literalString(expr hcl.Expression) (string, bool) {
	t, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || !t.IsStringLiteral() {
		return "", false
	}
	v := t.Parts[0].(*hclsyntax.LiteralValueExpr).Val
	if v.Type() != cty.String || !v.IsKnown() || v.IsNull() || v.IsMarked() {
		return "", false
	}
	return v.AsString(), true
}
