// Package authority is the registry of issuing authorities (颁发机构): each
// authority's unified social credit code, registered name, administrative
// area (GB/T 2260) and level, and optionally the authority it answers to.
// The hub loads it at start (configs/authorities.yaml, config key
// authorities.file), takes a pushed license's issuer name from it, checks
// the license's area against the authority's, and publishes it
// (GET /v1/authorities).
//
// # File
//
//	authorities:
//	  - code: 11430000006122244L        # unified social credit code (GB 32100), unique
//	    name: 湖南省市场监督管理局         # the name printed and signed on its licenses, unique
//	    area_code: "430000"              # GB/T 2260; national authorities leave it out
//	    level: provincial                # national | provincial | city | county | township
//	  - code: 11430100MB1K32010U
//	    name: 长沙市市场监督管理局
//	    area_code: "430100"
//	    level: city
//	    parent: 11430000006122244L       # optional: an authority of this file, one level up or more
//
// Every problem stops loading, each named with file:line, entry, field and
// the authority's code; unknown and repeated keys are problems too.
//
// # Areas
//
// An area code's significant part is the code without its trailing "00"
// pairs (ident.AreaPrefix). A provincial authority's area is PP0000, a
// city's PPCC00; county and township authorities give their county's code
// (a township has no 6-digit code of its own; a county-level unit of a
// city without counties, such as 441900, keeps its city's code). A license
// the authority issues must carry an area code within the authority's
// area (ident.AreaWithin): 长沙市市场监督管理局 (430100) issues for 430100
// and 4301xx, not for 430200. A national authority covers every area.
package authority

import (
	"slices"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/license"
)

// DefaultPath is where the hub looks for the registry unless told otherwise.
const DefaultPath = "configs/authorities.yaml"

// Authority is one issuing authority. The JSON form is what
// GET /v1/authorities returns.
type Authority struct {
	// Code is the unified social credit code (统一社会信用代码).
	Code string `json:"code"`
	// Name is the registered name, as every license it issues carries it.
	Name string `json:"name"`
	// AreaCode is the authority's administrative area (GB/T 2260); empty
	// for a national authority.
	AreaCode string `json:"area_code,omitempty"`
	// Level is the administrative level the authority sits at.
	Level catalog.Level `json:"level"`
	// Parent is the code of the authority it answers to, when given.
	Parent string `json:"parent,omitempty"`
}

// Registry is the loaded registry. It is immutable and safe for
// concurrent use; callers must not modify the *Authority values it hands
// out.
type Registry struct {
	path   string
	byCode map[string]*Authority
	sorted []*Authority // by Code
}

// Path is the file the registry was loaded from.
func (r *Registry) Path() string { return r.path }

// Authority returns the authority with the credit code.
func (r *Registry) Authority(code string) (*Authority, bool) {
	if r == nil {
		return nil, false
	}
	a, ok := r.byCode[code]
	return a, ok
}

// Authorities lists every authority, ordered by code.
func (r *Registry) Authorities() []*Authority {
	if r == nil {
		return nil
	}
	return slices.Clone(r.sorted)
}

// Registered is what the license library checks a push against
// (license.Authorities).
func (r *Registry) Registered(code string) (license.RegisteredAuthority, bool) {
	a, ok := r.Authority(code)
	if !ok {
		return license.RegisteredAuthority{}, false
	}
	return license.RegisteredAuthority{Name: a.Name, AreaCode: a.AreaCode}, true
}

var _ license.Authorities = (*Registry)(nil)
