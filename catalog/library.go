package catalog

import (
	"time"

	"github.com/licensehub/licensehub/license"
)

// The methods below plug the catalog into license.Config:
//
//	license.Config{Catalog: license.CatalogFunc(cat.Validator),
//		DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName}

// Validator returns the type with this code as a license.Validator.
func (c *Catalog) Validator(code string) (license.Validator, bool) {
	t, ok := c.Type(code)
	if !ok {
		return nil, false
	}
	return t, true
}

// DefaultValidUntil is the end of validity the type's rule gives a license
// valid from validFrom ("" when the type or the date is unknown: the
// library then reports the missing or bad field).
func (c *Catalog) DefaultValidUntil(typeCode, validFrom string) (string, error) {
	t, ok := c.Type(typeCode)
	if !ok {
		return "", nil
	}
	from, err := time.ParseInLocation(license.DateLayout, validFrom, license.CST)
	if err != nil {
		return "", nil
	}
	return t.ValidUntil(from), nil
}

// TypeName is the type's name as printed ("" for an unknown code).
func (c *Catalog) TypeName(code string) string {
	if t, ok := c.Type(code); ok {
		return t.Name
	}
	return ""
}
