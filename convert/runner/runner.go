// Package runner runs conversion jobs: it reads a legacy export with a
// convert.Mapping, pushes the rows to the library with a pool of workers,
// checkpoints to the object store, resumes after a crash to exactly the
// licenses an uninterrupted run makes, pauses while the object store is
// away, keeps one runner per job across hub instances (a KV lease), and
// ends with a report and a CSV of rejected rows.
package runner

import (
	"context"
	"time"

	"github.com/licensehub/licensehub/license"
)

// Library is what a conversion needs of the license library;
// *license.Library implements it.
type Library interface {
	// Push stores a license. Pushing the same content again (a resumed
	// job re-running a row it had already converted) answers the stored
	// license with Created false; the same type, authority and number with
	// other content is ECONFLICT with Details["reason"] ==
	// "natural_key_conflict": a duplicate.
	Push(ctx context.Context, req license.PushRequest) (*license.PushResult, error)
	// Check validates like Push and writes nothing (dry runs).
	Check(ctx context.Context, req license.PushRequest) (string, error)
	// Holds reports whether a license with that natural key exists (dry
	// runs: duplicates against the library).
	Holds(ctx context.Context, typeCode, authority, number string) (string, bool, error)
}

// Job states.
const (
	StateQueued  = "queued"  // uploaded, waiting for a runner
	StateRunning = "running" // a runner holds its lease
	StatePaused  = "paused"  // the object store is away: retrying, will resume
	StateDone    = "done"    // every row read and accounted for
	StateFailed  = "failed"  // cannot go on (unknown mapping, unreadable source); Error says why
)

// Job is one conversion: a source file read with a mapping. Stored as
// conversions/<ID>/job.json (create-only) for jobs started over the API;
// the CLI's jobs have it too, so that a killed CLI run resumes.
type Job struct {
	ID      string `json:"id"`      // 32 hex chars; the batch recorded in every license's provenance
	Mapping string `json:"mapping"` // Mapping.Name
	// Source is the object key of the uploaded file
	// (conversions/<ID>/source) or, for CLI jobs, the local file's base
	// name (informational).
	Source    string    `json:"source"`
	Format    string    `json:"format"` // csv, xlsx, jsonl
	Size      int64     `json:"size"`   // bytes; -1 unknown
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"` // app ID or "hubctl"
}

// Counts account for every row read: Read = Converted + Duplicates +
// Rejected (once the job is done).
type Counts struct {
	Read       int            `json:"read"`
	Converted  int            `json:"converted"`  // licenses this job made (including ones a resumed run found already made by this job)
	Duplicates int            `json:"duplicates"` // same type, authority and number as an earlier row or a license already in the library
	Rejected   int            `json:"rejected"`
	RejectedBy map[string]int `json:"rejected_by"` // reason code → rows
}

// State is a job's progress, stored as conversions/<ID>/state.json at each
// checkpoint and reported by GET /v1/conversions/{id}.
type State struct {
	Job   Job    `json:"job"`
	State string `json:"state"`
	// Line is the checkpoint: every row whose line is <= Line is
	// accounted for in Counts and its rejects are in RejectParts.
	Line        int       `json:"line"`
	Counts      Counts    `json:"counts"`
	RejectParts []string  `json:"reject_parts,omitempty"` // object keys of CSV parts, in line order
	BytesDone   int64     `json:"bytes_done"`
	BytesTotal  int64     `json:"bytes_total"`
	RowsPerSec  float64   `json:"rows_per_second"`
	ETASeconds  float64   `json:"eta_seconds"` // -1 unknown
	Owner       string    `json:"owner,omitempty"`
	Error       string    `json:"error,omitempty"`
	Attempts    int       `json:"attempts,omitempty"` // object-store retries while paused
	StartedAt   time.Time `json:"started_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	// Fence is the fencing token of the job's lease under which this
	// state was written (package lease); a runner holding a smaller one
	// lost the job and does not overwrite it.
	Fence int64 `json:"fence,omitempty"`
}
