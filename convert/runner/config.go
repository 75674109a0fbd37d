package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/convert"
)

// Config configures a Runner. Library, Objects and KV are required.
type Config struct {
	Library  Library                     // *license.Library
	Objects  licensehub.ObjectStore      // conversions/<id>/...
	KV       licensehub.KV               // leases, the queue of API jobs, live progress
	Mappings map[string]*convert.Mapping // by Mapping.Name

	Workers         int           // push concurrency; 0: 16
	CheckpointRows  int           // rows between checkpoints at most; 0: 1000
	CheckpointEvery time.Duration // time between checkpoints at most; 0: 2s
	LeaseTTL        time.Duration // 0: 30s (renewed at a third of it)
	Owner           string        // instance ID for leases and State.Owner; "": host:pid
	Clock           func() time.Time
	Logger          *slog.Logger
	OpTimeout       time.Duration // per store call; 0: 10s
	// XLSXMaxUnzipped bounds what an XLSX source may unpack to, in bytes;
	// 0: convert.DefaultMaxUnzipped.
	XLSXMaxUnzipped int64
}

// Defaults of Config.
const (
	DefaultWorkers         = 16
	DefaultCheckpointRows  = 1000
	DefaultCheckpointEvery = 2 * time.Second
	DefaultLeaseTTL        = 30 * time.Second
	DefaultOpTimeout       = 10 * time.Second
)

// Runner runs conversion jobs. Safe for concurrent use, and for several
// hub instances sharing one object store and one KV.
type Runner struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg, applies its defaults and returns a Runner.
func New(cfg Config) (*Runner, error) {
	switch {
	case cfg.Library == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Library", "conversion runner: no library")
	case cfg.Objects == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Objects", "conversion runner: no object store")
	case cfg.KV == nil:
		return nil, licensehub.FieldError(licensehub.EINVALID, "KV", "conversion runner: no KV")
	case cfg.Workers < 0 || cfg.Workers > 1024:
		return nil, licensehub.FieldError(licensehub.EINVALID, "Workers", "conversion runner: workers must be 0..1024, got %d", cfg.Workers)
	case cfg.CheckpointRows < 0:
		return nil, licensehub.FieldError(licensehub.EINVALID, "CheckpointRows", "conversion runner: negative checkpoint rows")
	case cfg.XLSXMaxUnzipped < 0:
		return nil, licensehub.FieldError(licensehub.EINVALID, "XLSXMaxUnzipped", "conversion runner: negative XLSX unzip limit")
	}
	if cfg.Mappings == nil {
		cfg.Mappings = map[string]*convert.Mapping{}
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.CheckpointRows == 0 {
		cfg.CheckpointRows = DefaultCheckpointRows
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < 300*time.Millisecond {
		cfg.LeaseTTL = 300 * time.Millisecond
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Runner{cfg: cfg, log: cfg.Logger.With("component", "conversion")}, nil
}

// Owner is the instance ID this runner records in leases and states.
func (r *Runner) Owner() string { return r.cfg.Owner }

// opCtx bounds one store call.
func (r *Runner) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg.OpTimeout)
}

func (r *Runner) now() time.Time { return r.cfg.Clock().UTC() }
