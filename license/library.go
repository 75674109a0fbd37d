package license

import (
	"log/slog"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/signing"
)

// Validator checks a license body against its catalog entry (the face
// fields' schema, holder code types allowed, ...). *catalog.Type
// implements it. Errors should be *licensehub.Error with code EINVALID and
// Field the JSON path in the body (e.g. "fields.legal_representative");
// body paths equal push request paths.
type Validator interface {
	Validate(*License) error
}

// Catalog finds the validator of a license type by its 21-character type
// code. The license package does not import package catalog; the hub wires
// it with CatalogFunc.
type Catalog interface {
	Type(code string) (Validator, bool)
}

// CatalogFunc adapts a function to Catalog, e.g.
//
//	license.CatalogFunc(func(code string) (license.Validator, bool) {
//		t, ok := cat.Type(code)
//		if !ok {
//			return nil, false
//		}
//		return t, true
//	})
type CatalogFunc func(code string) (Validator, bool)

// Type calls f.
func (f CatalogFunc) Type(code string) (Validator, bool) { return f(code) }

// Authorities is the registry of issuing authorities
// (authority.Registry). With it, a push names a registered authority: the
// issuer's name is taken from the registry when left out and must equal it
// otherwise, and the license's area code must lie within the authority's
// area (see checkAuthority).
type Authorities interface {
	Registered(code string) (RegisteredAuthority, bool)
}

// RegisteredAuthority is what a push is checked against: the authority's
// registered name and area code (GB/T 2260; empty for a national
// authority, which covers every area).
type RegisteredAuthority struct {
	Name     string
	AreaCode string
}

// Config configures a Library. Objects, KV, Signers and Catalog are
// required.
type Config struct {
	Objects licensehub.ObjectStore // system of record
	KV      licensehub.KV          // rebuildable indexes (Reindex)
	Signers signing.SignerSource   // the issuing authorities' active keys
	Catalog Catalog                // type code → validator
	// Authorities, when set, is the registry a push's issuer must be in
	// (see checkAuthority); nil: any issuer with a name and a valid code.
	Authorities Authorities

	// DefaultValidUntil gives valid_until when a push leaves it out: the
	// catalog's validity rule for the type (a date in DateLayout or
	// LongTerm). Nil, or "" returned: valid_until is required.
	DefaultValidUntil func(typeCode, validFrom string) (string, error)
	// TypeName gives the type's name for License.TypeName (and Name when
	// the push has none); nil: the push's own values are used.
	TypeName func(typeCode string) string

	// IssueDateSkewDays is how many days after today (in China) an issue
	// date may be, for a department whose clock or day boundary differs;
	// negative counts as 0. The hub's config key is
	// library.issue_date_skew_days (default 1).
	IssueDateSkewDays int

	Clock     func() time.Time // nil: time.Now
	Logger    *slog.Logger     // nil: slog.Default(); holder codes are never logged
	OpTimeout time.Duration    // per object store / KV call; 0: 10s
	// Workers bounds Reindex's parallel reads; 0: 8.
	Workers int
}

// Operations of ChangeStatus and NewVersion (what the exchange events and
// status records name).
const (
	OpNew       = "new"
	OpSuspend   = "suspend"
	OpRestore   = "restore"
	OpCancel    = "cancel"
	OpWithdraw  = "withdraw"
	OpRevoke    = "revoke"
	OpExpire    = "expire"
	OpRenew     = "renew"
	OpChange    = "change"
	OpSupersede = "supersede" // the status record a new version puts on its predecessor
)

// SupersededDescription is the description of StatusOther (99) on a
// license a newer version replaced.
const SupersededDescription = "superseded"

// PushRequest is a department's push of a newly issued license. The JSON
// names are those of the request body (and of the license body), so a
// validation error's Field is the JSON path in both.
type PushRequest struct {
	App            string `json:"-"` // the pushing app's ID (recorded, not part of the content)
	IdempotencyKey string `json:"-"` // the Idempotency-Key header; optional

	TypeCode   string `json:"type_code" maxlen:"32"`
	Name       string `json:"name,omitempty" maxlen:"100"`      // license name; default: the type's name
	TypeName   string `json:"type_name,omitempty" maxlen:"100"` // default: Config.TypeName
	Issuer     Party  `json:"issuer"`                           // issuing authority {name, code}
	Number     string `json:"number" maxlen:"64"`               // license number, 1..64 of [0-9A-Za-z-]
	Holder     Holder `json:"holder"`
	IssueDate  string `json:"issue_date" maxlen:"32"`
	ValidFrom  string `json:"valid_from" maxlen:"32"`
	ValidUntil string `json:"valid_until,omitempty" maxlen:"32"` // date, LongTerm, or empty: the catalog's rule
	AreaCode   string `json:"area_code" maxlen:"12"`
	Matter     *Party `json:"matter,omitempty"`
	// Fields' strings are at most 2000 characters here; the catalog's
	// max_length of each field is the real (smaller) bound.
	Fields     map[string]any  `json:"fields,omitempty" maxlen:"2000"`
	Attachment *AttachmentData `json:"attachment,omitempty"`
	// Provenance is set by the stock conversion and the provincial
	// exchange, never by a department's push (not read from JSON).
	Provenance *Provenance `json:"-"`
}

// AttachmentData is an attachment as pushed: the bytes (base64 in JSON)
// and their media type.
type AttachmentData struct {
	MediaType string `json:"media_type" maxlen:"100"`
	Data      []byte `json:"data"`
}

// PushResult is what Push answers.
type PushResult struct {
	Identifier string
	Document   []byte // the stored signed document (canonical JSON)
	Created    bool   // true: 201, this push made the license; false: 200, a retry
}

// VersionRequest is a renewal or change: the new version's content. Its
// type code, issuer and license number must be those of the license it
// replaces (they make the identifier); App and IdempotencyKey as in Push.
type VersionRequest = PushRequest

// Record is a license as read from the library.
type Record struct {
	Identifier string
	Document   []byte   // stored signed document
	License    *License // its body
	Status     Status
	// Initial is the status before any status record: valid (01), or
	// expired (05) for a historic license recorded already expired (a
	// local one by the stock conversion, a foreign one as the province
	// sent it). The exchange carries it with the license.
	Initial    Status
	StatusName string // Status.Name(), or "superseded"
	// StatusDescription is set for StatusOther: "superseded" on a replaced version.
	StatusDescription string
	Previous          string   // identifier of the version this one replaced
	SupersededBy      string   // identifier of the version that replaced this one
	Versions          []string // identifiers of every version, oldest first
	History           []StatusChange
	// Provenance is set for a foreign license (Kind ProvenanceProvince:
	// issued elsewhere in the province, received from the provincial
	// platform, read-only here). Its document is signed by its own
	// authority, so the provenance comes from the stored object's
	// metadata, not from the signed body.
	Provenance *Provenance
}

// StatusChange is one signed status record.
type StatusChange struct {
	Identifier   string `json:"identifier"`
	Seq          int    `json:"seq"`
	From         Status `json:"from"`
	To           Status `json:"to"`
	Op           string `json:"op"`
	Reason       string `json:"reason,omitempty"`
	App          string `json:"app,omitempty"`
	At           string `json:"at"` // RFC 3339 UTC, whole seconds
	SupersededBy string `json:"superseded_by,omitempty"`
	// Provenance is ProvenanceProvince for a foreign license's record: its
	// Document is then the province-signed exchange envelope (verify it
	// against the province's key, not the issuing authority's), App the
	// sending platform and EventID the exchange event.
	Provenance string `json:"provenance,omitempty"`
	EventID    string `json:"event_id,omitempty"`
	// Document is the stored signed record.
	Document []byte `json:"-"`
}

// Summary is one license in a lookup result.
type Summary struct {
	Identifier   string `json:"identifier"`
	TypeCode     string `json:"type_code"`
	Authority    string `json:"authority"`
	Number       string `json:"number"`
	Version      int    `json:"version"`
	Status       Status `json:"status"`
	SupersededBy string `json:"superseded_by,omitempty"`
}

// ReindexReport says what Reindex found and rebuilt.
type ReindexReport struct {
	Licenses         int           // license objects indexed
	StatusRecords    int           // licenses with status records read
	Holders          int           // distinct holder sets written
	SupersedeRepairs int           // predecessors given their missing supersede record
	OutboxRepairs    int           // missing outbox events re-created (and queued)
	Errors           []string      // objects that could not be read or indexed (skipped)
	Took             time.Duration //
}

// Library is the city license library: push, read, lifecycle, index and
// reindex over a shared object store (system of record) and KV (indexes).
// Safe for concurrent use, and for several hub instances sharing one
// object store and one KV.
type Library struct {
	cfg    Config
	log    *slog.Logger
	outbox outboxBatcher
}

var _ StatusSource = (*Library)(nil)

// NewLibrary checks cfg and returns a Library.
func NewLibrary(cfg Config) (*Library, error) {
	switch {
	case cfg.Objects == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Objects", "license library: no object store")
	case cfg.KV == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "KV", "license library: no KV")
	case cfg.Signers == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Signers", "license library: no signer source")
	case cfg.Catalog == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Catalog", "license library: no catalog")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.IssueDateSkewDays < 0 {
		cfg.IssueDateSkewDays = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 10 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	return &Library{cfg: cfg, log: cfg.Logger.With("component", "license-library")}, nil
}
