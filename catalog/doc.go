// Package catalog is the license catalog (证照目录): the license types the
// hub accepts, each with its defining authority, holder code types,
// issuing level, validity rule, related service matters and face-field
// schema, and the validation of a license body against its type.
//
// # Files
//
// The catalog is a directory (DefaultDir, configs/catalog) with one YAML
// file per license type; every *.yaml file in it is read, other files are
// ignored. Unknown keys are errors.
//
//	code: 11100000000013338W011          # 证照类型代码: defining authority's credit code + 3 digits
//	name: 营业执照
//	defining_authority:
//	  name: 国家市场监督管理总局
//	  code: 11100000000013338W           # must equal the first 18 characters of code
//	  level: national                    # optional
//	holder_code_types: ["001"]           # "001" credit code, "111" resident ID number, or both
//	issuing_level: county                # lowest level that issues it: national|provincial|city|county|township
//	validity: {long_term: true}          # or {years: 5}: valid until the day before the 5th anniversary
//	earliest_year: 1949                  # optional (default 1949): no issue date or valid_from before it
//	valid_from_before_issue: false       # optional: true allows valid_from before issue_date
//	record_expired: false                # optional: true lets the stock conversion record licenses
//	                                     #   whose validity already ended, stored 05 (expired) at once
//	matters:
//	  - {code: 330100-000-XK-00123, name: 企业设立登记}
//	fields:                              # face fields, in printed order
//	  - name: unified_social_credit_code # key in the body's fields: ASCII snake_case
//	    label: 统一社会信用代码            # as printed
//	    type: string                     # string | date | integer | enum | boolean
//	    required: true
//	    format: credit_code              # strings: credit_code | resident_id (checked by package ident)
//	    pattern: '[0-9A-HJ-NP-RTUW-Y]{18}' # strings: Go regexp, matched against the whole value
//	    min_length: 18                   # strings: bounds in characters, not bytes
//	    max_length: 18                   # strings: required, at most 10000
//	    bind: holder.code                # strings: must equal the license's holder.code (or holder.name)
//	  - {name: established_date, label: 成立日期, type: date, required: true}
//	  - {name: business_term_to, label: 营业期限至, type: date, allow_long_term: true}
//	  - {name: sex, label: 性别, type: enum, enum: [男, 女]}
//
// Load checks everything and refuses the whole catalog on any problem,
// listing every problem of every file with file:line, type code and key:
// a type code that is not 21 characters, whose first 18 are not a valid
// unified social credit code (check character included) or whose last 3
// are not digits; the same code in two files; a defining authority code
// other than the type code's first 18 characters; a missing name; an
// unknown or repeated holder code type; an unknown level; a validity that
// is not exactly one of years (1..100) and long_term: true; a bad or
// repeated matter code; no fields; a field name that is not ASCII
// snake_case or is repeated; a missing label; an unknown field type; an
// enum without values or values on a non-enum; a pattern, length bound or
// format on a non-string; allow_long_term on a non-date; a pattern that
// does not compile; a length bound below 1 or min_length above max_length;
// a string field without max_length (or one above 10000); a bind other
// than holder.code or holder.name, or on a non-string; a credit_code
// (resident_id) field bound to holder.code on a type not issued to
// holder code type 001 (111) alone; an earliest_year outside 1800..2100;
// a type name or enum value that breaks package signable's text rules
// (they are signed).
//
// # Validation
//
// Type.Validate and Type.ValidateAll (and the Catalog methods of the same
// names, which look the type up by the body's type_code) check the parts
// of a license body the type governs: the holder code type and code, and
// the face fields. Every problem is a *licensehub.Error with Code
// licensehub.EINVALID, Field the JSON path (holder.code_type, holder.code,
// fields.<name>) and Details["rule"] one of the Rule* constants or, for
// codes checked by package ident, ident's rule. See Type.ValidateAll.
package catalog
