package licensehub

// BackendSetting is one setting of a backend server that the hub depends
// on, as read from the server, with the hub's verdict on it. The hub
// checks them at start (a VerdictRefuse stops it) and /readyz shows them.
type BackendSetting struct {
	Name    string `json:"name"`
	Value   string `json:"value,omitempty"` // empty when it could not be read
	Verdict string `json:"verdict"`         // VerdictOK, VerdictWarn, VerdictRefuse or VerdictUnknown
	Note    string `json:"note,omitempty"`  // why, in words an operator acts on
}

// Verdicts on a BackendSetting.
const (
	VerdictOK      = "ok"
	VerdictWarn    = "warn"    // the hub runs, and logs why it should not stay so
	VerdictRefuse  = "refuse"  // the hub does not start on it; /readyz answers 503
	VerdictUnknown = "unknown" // the server would not say (e.g. CONFIG disabled)
)
