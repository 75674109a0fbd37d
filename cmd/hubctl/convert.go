package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/authority"
	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/config"
	"github.com/licensehub/licensehub/convert"
	"github.com/licensehub/licensehub/convert/runner"
	"github.com/licensehub/licensehub/internal/logging"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/store"
)

const convertUsage = `usage:
  hubctl convert --mapping NAME|FILE [--config FILE] [--dry-run [--rejects OUT.csv]] [--workers N] [--quiet] FILE
  hubctl convert rejects [--config FILE] JOBID > rejects.csv
  hubctl convert status [--config FILE] JOBID`

// cmdConvert converts a legacy register (存量证照: CSV, XLSX, JSON lines)
// into signed licenses in the library, in process, on the stores of the
// hub's configuration (like reindex). The job's ID is derived from the
// mapping and the file's bytes: running the same command again after an
// interruption (Ctrl-C, kill -9, a crash) resumes where the last
// checkpoint left off and ends with exactly the licenses and counts of an
// uninterrupted run. Rejected rows are not a failure: exit 0 once every
// row is accounted for, 1 on error, 2 on usage.
func cmdConvert(ctx context.Context, g *globals, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "rejects":
			return cmdConvertRejects(ctx, g, args[1:])
		case "status":
			return cmdConvertStatus(ctx, g, args[1:])
		}
	}
	fs := flag.NewFlagSet("hubctl convert", flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	cfgPath := fs.String("config", "", "the hub's configuration (default $HUB_CONFIG, else configs/hub.yaml if present); HUB_* variables apply")
	mappingArg := fs.String("mapping", "", "the legacy source's mapping: a name in conversion.mappings_dir, or a mapping file")
	dryRun := fs.Bool("dry-run", false, "check every row (and duplicates against the library) and write nothing")
	rejectsOut := fs.String("rejects", "", "with --dry-run: write the rejected rows to this CSV file")
	workers := fs.Int("workers", 0, "rows pushed concurrently (default conversion.workers)")
	quiet := fs.Bool("quiet", false, "no progress line")
	fs.Usage = func() { fmt.Fprintln(g.stderr, convertUsage); fs.PrintDefaults() }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return &exitError{code: 2}
	}
	switch {
	case len(pos) != 1:
		return &exitError{code: 2, msg: "convert: name one legacy file\n" + convertUsage}
	case *mappingArg == "":
		return &exitError{code: 2, msg: "convert: --mapping is required\n" + convertUsage}
	case *workers < 0 || *workers > 1024:
		return &exitError{code: 2, msg: "convert: --workers must be 1..1024"}
	case *rejectsOut != "" && !*dryRun:
		return &exitError{code: 2, msg: "convert: --rejects is for --dry-run; a real run keeps the rejects (hubctl convert rejects JOBID)"}
	}
	file := pos[0]
	fi, err := os.Stat(file)
	if err != nil || !fi.Mode().IsRegular() {
		return &exitError{code: 2, msg: fmt.Sprintf("convert: %s is not a readable file", file)}
	}

	cfg, err := loadHubConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := cliLogger(g, cfg)
	cat, err := catalog.Load(cfg.Catalog.Dir)
	if err != nil {
		return fmt.Errorf("catalog.dir: %w", err)
	}
	m, err := loadMapping(cfg, *mappingArg)
	if err != nil {
		return err
	}
	if err := m.BindCatalog(cat); err != nil {
		return err
	}
	h, err := openConvertHub(ctx, cfg, cat, log)
	if err != nil {
		return err
	}
	defer h.close()
	if cfg.EmbeddedKV() && !*dryRun {
		fmt.Fprintln(g.stderr, "hubctl: no redis.url: the library's index and the job's lease live in this process only;"+
			" a hub on the same data_dir rebuilds its index when it starts (restart it), and run one convert at a time")
	}
	c := cfg.Conversion
	if *workers == 0 {
		*workers = c.Workers
	}
	r, err := runner.New(runner.Config{Library: h.lib, Objects: h.objects.Store, KV: h.kv.Store,
		Mappings: map[string]*convert.Mapping{m.Name: m}, Workers: *workers,
		CheckpointRows: c.CheckpointRows, CheckpointEvery: c.CheckpointEvery.D(), LeaseTTL: c.LeaseTTL.D(),
		Owner: cliOwner(), Logger: log, OpTimeout: cfg.MinIO.Timeout.D(), XLSXMaxUnzipped: int64(c.XLSXMaxUnzipped)})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var job *runner.Job
	if *dryRun {
		job, err = r.LocalJob(ctx, m.Name, file)
	} else {
		job, err = r.JobFor(ctx, m.Name, file)
	}
	if err != nil {
		return err
	}
	open := func() (convert.Reader, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, licensehub.Wrap(err, licensehub.EINVALID, "cannot open %s", file)
		}
		rd, err := convert.OpenReader(f, job.Size, job.Format, m.Encoding, m.Sheet, int64(c.XLSXMaxUnzipped))
		if err != nil {
			f.Close()
			return nil, err
		}
		return &fileReader{Reader: rd, f: f}, nil
	}
	opts := runner.RunOptions{DryRun: *dryRun}
	var rejectsFile *os.File
	if *rejectsOut != "" {
		if rejectsFile, err = os.Create(*rejectsOut); err != nil {
			return err
		}
		defer rejectsFile.Close()
		opts.Rejects = rejectsFile
	}
	var pr *progressLine
	if !*quiet {
		pr = newProgressLine(g.stderr)
		opts.Progress = pr.update
	}
	verb := "converting"
	if *dryRun {
		verb = "checking (dry run: nothing is written)"
	}
	fmt.Fprintf(g.stderr, "%s %s with mapping %s: job %s\n", verb, file, m.Name, job.ID)

	st, err := r.Run(ctx, *job, open, opts)
	if owner, stale := staleLease(err); stale {
		// A killed hubctl of this host held it: take the job over now
		// rather than wait for the lease to expire.
		if ok, berr := r.BreakLease(ctx, job.ID, owner); berr == nil && ok {
			fmt.Fprintf(g.stderr, "hubctl: took job %s over from %s, which is no longer running\n", job.ID, owner)
			st, err = r.Run(ctx, *job, open, opts)
		}
	}
	if pr != nil {
		pr.done()
	}
	if err != nil {
		var le *licensehub.Error
		switch {
		case errors.As(err, &le) && le.Code == licensehub.ECONFLICT && le.Details["reason"] == "job_leased":
			return &exitError{code: 1, msg: fmt.Sprintf("job %s is being run by %v; wait for it (hubctl convert status %s)", job.ID, le.Details["owner"], job.ID)}
		case errors.Is(err, context.Canceled) && st != nil:
			if *dryRun {
				return &exitError{code: 1, msg: "interrupted"}
			}
			return &exitError{code: 1, msg: fmt.Sprintf("interrupted at line %d (%s); run the same command again to resume", st.Line, st.Counts.Summary())}
		case st != nil && st.State == runner.StateFailed:
			printReport(g.stdout, st, *dryRun, *rejectsOut)
			return &exitError{code: 1, msg: fmt.Sprintf("job %s failed at line %d: %s; fix the cause and run the same command again to resume", job.ID, st.Line, st.Error)}
		}
		return err
	}
	printReport(g.stdout, st, *dryRun, *rejectsOut)
	return nil
}

// parseInterleaved parses flags that may come before or after the
// positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// loadMapping reads --mapping: a file when it names one (a path or a
// .yaml file), else a name in conversion.mappings_dir.
func loadMapping(cfg *config.Config, arg string) (*convert.Mapping, error) {
	if strings.ContainsRune(arg, os.PathSeparator) || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return convert.LoadMapping(arg)
	}
	dir := cfg.Conversion.MappingsDir
	if dir == "" {
		dir = "configs/conversion"
	}
	all, err := convert.LoadMappings(dir)
	if err != nil {
		return nil, fmt.Errorf("conversion.mappings_dir: %w", err)
	}
	m, ok := all[arg]
	if !ok {
		names := slices.Sorted(maps.Keys(all))
		return nil, &exitError{code: 2, msg: fmt.Sprintf("convert: no mapping %q in %s (there: %s); or give a mapping file", arg, dir, strings.Join(names, ", "))}
	}
	return m, nil
}

// cliLogger logs warnings and errors to stderr (debug too when log.level
// is debug: one line per checkpoint).
func cliLogger(g *globals, cfg *config.Config) *slog.Logger {
	level := "warn"
	if strings.EqualFold(cfg.Log.Level, "debug") {
		level = "debug"
	}
	return logging.New(g.stderr, level, "text")
}

// cliOwner names this process in the job's lease: hubctl@host:pid.
func cliOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("hubctl@%s:%d", host, os.Getpid())
}

// staleLease reports whether err is the lease conflict of a hubctl
// process of this host that no longer exists.
func staleLease(err error) (string, bool) {
	var le *licensehub.Error
	if !errors.As(err, &le) || le.Code != licensehub.ECONFLICT || le.Details["reason"] != "job_leased" {
		return "", false
	}
	owner, _ := le.Details["owner"].(string)
	host, _ := os.Hostname()
	rest, ok := strings.CutPrefix(owner, "hubctl@"+host+":")
	if !ok {
		return "", false
	}
	pid, err := strconv.Atoi(rest)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return "", false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return owner, true
	}
	err = p.Signal(syscall.Signal(0))
	return owner, errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH)
}

// convertHub is what a conversion needs of the hub, opened in process.
type convertHub struct {
	objects *store.Backend[licensehub.ObjectStore]
	kv      *store.Backend[licensehub.KV]
	lib     runner.Library
}

func (h *convertHub) close() {
	if h.kv != nil {
		h.kv.Close()
	}
	if h.objects != nil {
		h.objects.Close()
	}
}

// openConvertHub opens the stores and, when cat is set, the library (with
// the keyring); without it the library refuses every call (reading a
// job's state and rejects needs none).
func openConvertHub(ctx context.Context, cfg *config.Config, cat *catalog.Catalog, log *slog.Logger) (*convertHub, error) {
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h := &convertHub{lib: noLibrary{}}
	var err error
	if h.objects, err = store.OpenObjects(octx, cfg); err != nil {
		return nil, err
	}
	if h.kv, err = store.OpenKV(octx, cfg); err != nil {
		h.close()
		return nil, err
	}
	if cat == nil {
		return h, nil
	}
	ring, err := openHubKeyring(cfg)
	if err != nil {
		h.close()
		return nil, err
	}
	// Converted licenses are this city's: their issuer is checked against
	// the authority registry as the hub checks a push.
	authorities, err := authority.Load(cfg.Authorities.File)
	if err != nil {
		h.close()
		return nil, fmt.Errorf("authorities.file: %w", err)
	}
	lib, err := license.NewLibrary(license.Config{Objects: h.objects.Store, KV: h.kv.Store, Signers: ring, Logger: log, Authorities: authorities,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName,
		OpTimeout: cfg.MinIO.Timeout.D()})
	if err != nil {
		h.close()
		return nil, err
	}
	h.lib = lib
	return h, nil
}

// noLibrary is the library of the read-only subcommands.
type noLibrary struct{}

func (noLibrary) Push(context.Context, license.PushRequest) (*license.PushResult, error) {
	return nil, licensehub.Errorf(licensehub.EINTERNAL, "hubctl: no library opened")
}
func (noLibrary) Check(context.Context, license.PushRequest) (string, error) {
	return "", licensehub.Errorf(licensehub.EINTERNAL, "hubctl: no library opened")
}
func (noLibrary) Holds(context.Context, string, string, string) (string, bool, error) {
	return "", false, licensehub.Errorf(licensehub.EINTERNAL, "hubctl: no library opened")
}

// openJobReader opens the stores for the read-only subcommands.
func openJobReader(ctx context.Context, g *globals, name string, args []string) (*runner.Runner, *convertHub, string, error) {
	fs := flag.NewFlagSet("hubctl convert "+name, flag.ContinueOnError)
	fs.SetOutput(g.stderr)
	cfgPath := fs.String("config", "", "the hub's configuration (default $HUB_CONFIG, else configs/hub.yaml if present); HUB_* variables apply")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, nil, "", &exitError{code: 2}
	}
	if len(pos) != 1 || !runner.ValidID(pos[0]) {
		return nil, nil, "", &exitError{code: 2, msg: "convert " + name + ": name one job ID (32 hex digits)\n" + convertUsage}
	}
	cfg, err := loadHubConfig(*cfgPath)
	if err != nil {
		return nil, nil, "", err
	}
	h, err := openConvertHub(ctx, cfg, nil, cliLogger(g, cfg))
	if err != nil {
		return nil, nil, "", err
	}
	r, err := runner.New(runner.Config{Library: h.lib, Objects: h.objects.Store, KV: h.kv.Store,
		Owner: cliOwner(), Logger: cliLogger(g, cfg), OpTimeout: cfg.MinIO.Timeout.D()})
	if err != nil {
		h.close()
		return nil, nil, "", err
	}
	return r, h, pos[0], nil
}

// cmdConvertRejects writes a job's rejected rows as CSV to stdout.
func cmdConvertRejects(ctx context.Context, g *globals, args []string) error {
	r, h, id, err := openJobReader(ctx, g, "rejects", args)
	if err != nil {
		return err
	}
	defer h.close()
	return r.Rejects(ctx, id, g.stdout)
}

// cmdConvertStatus prints a job's state as JSON.
func cmdConvertStatus(ctx context.Context, g *globals, args []string) error {
	r, h, id, err := openJobReader(ctx, g, "status", args)
	if err != nil {
		return err
	}
	defer h.close()
	st, err := r.State(ctx, id)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// fileReader closes the file under a Reader.
type fileReader struct {
	convert.Reader
	f *os.File
}

func (r *fileReader) Close() error {
	err := r.Reader.Close()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// printReport prints the final account of a job.
func printReport(w io.Writer, st *runner.State, dryRun bool, rejectsOut string) {
	c := st.Counts
	title := "conversion"
	if dryRun {
		title = "dry run (nothing written)"
	}
	fmt.Fprintf(w, "%s %s: %s, mapping %s, %s\n", title, st.Job.ID, st.State, st.Job.Mapping, st.Job.Source)
	fmt.Fprintf(w, "  rows read   %10d\n", c.Read)
	verb := "converted"
	if dryRun {
		verb = "would convert"
	}
	fmt.Fprintf(w, "  %-11s %10d\n", verb, c.Converted)
	fmt.Fprintf(w, "  duplicates  %10d\n", c.Duplicates)
	fmt.Fprintf(w, "  rejected    %10d\n", c.Rejected)
	for _, code := range slices.Sorted(maps.Keys(c.RejectedBy)) {
		fmt.Fprintf(w, "    %-18s %6d\n", code, c.RejectedBy[code])
	}
	if !st.StartedAt.IsZero() && !st.FinishedAt.IsZero() {
		took := st.FinishedAt.Sub(st.StartedAt)
		fmt.Fprintf(w, "  took %s", took.Round(time.Millisecond))
		if st.RowsPerSec > 0 {
			fmt.Fprintf(w, " (this run: %.0f rows/s)", st.RowsPerSec)
		}
		fmt.Fprintln(w)
	}
	switch {
	case c.Rejected == 0:
	case dryRun && rejectsOut != "":
		fmt.Fprintf(w, "rejected rows: %s\n", rejectsOut)
	case dryRun:
		fmt.Fprintln(w, "rejected rows: run again with --rejects OUT.csv to list them")
	default:
		fmt.Fprintf(w, "rejected rows: hubctl convert rejects %s > rejects.csv\n", st.Job.ID)
	}
}

// progressLine shows a job's progress on stderr: one line rewritten in
// place on a terminal, a plain line every progressEvery otherwise.
type progressLine struct {
	w        io.Writer
	terminal bool
	last     time.Time
	width    int
}

const progressEvery = 5 * time.Second

func newProgressLine(w io.Writer) *progressLine {
	p := &progressLine{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progressLine) update(s runner.State) {
	if s.State == runner.StateDone || s.State == runner.StateFailed {
		return // the report follows
	}
	now := time.Now()
	if !p.terminal && now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	c := s.Counts
	line := fmt.Sprintf("%6.0f rows/s  read %d  converted %d  duplicates %d  rejected %d",
		s.RowsPerSec, c.Read, c.Converted, c.Duplicates, c.Rejected)
	if s.BytesTotal > 0 {
		line += fmt.Sprintf("  %5.1f%%", 100*float64(s.BytesDone)/float64(s.BytesTotal))
	}
	if s.ETASeconds >= 0 {
		line += "  ETA " + (time.Duration(s.ETASeconds) * time.Second).String()
	}
	if s.State == runner.StatePaused {
		line += fmt.Sprintf("  PAUSED (store unavailable, retry %d)", s.Attempts)
	}
	if !p.terminal {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := ""
	if n := len(line); n < p.width {
		pad = strings.Repeat(" ", p.width-n)
	}
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+pad)
}

// done ends the rewritten line.
func (p *progressLine) done() {
	if p.terminal && p.width > 0 {
		fmt.Fprintln(p.w)
	}
}
