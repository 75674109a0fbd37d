package adapters

import (
	"net/url"

	"github.com/licensehub/licensehub/ident"
)

// ResidentParams is the query of a kind keyed by a person: id_number,
// check digit and birth date validated.
func ResidentParams(idNumber string) (url.Values, error) {
	if err := ident.ValidateResidentID(idNumber); err != nil {
		return nil, ident.WithField(err, "id_number")
	}
	return url.Values{"id_number": {idNumber}}, nil
}

// OrganisationParams is the query of a kind keyed by an organisation:
// credit_code, check character validated.
func OrganisationParams(creditCode string) (url.Values, error) {
	if err := ident.ValidateCreditCode(creditCode); err != nil {
		return nil, ident.WithField(err, "credit_code")
	}
	return url.Values{"credit_code": {creditCode}}, nil
}

// MustKind returns the kind named name among kinds; a missing one is a bug
// in the calling adapter's constants, so it panics.
func MustKind(kinds []Kind, name string) Kind {
	k, ok := FindKind(kinds, name)
	if !ok {
		panic("adapters: no kind " + name)
	}
	return k
}
