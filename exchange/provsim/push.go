package provsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/licensehub/licensehub/client"
	"github.com/licensehub/licensehub/exchange"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/signing"
)

// InboundPath is the hub's inbound exchange endpoint.
const InboundPath = "/v1/exchange/inbound"

// Defaults of PushConfig.
const (
	DefaultProvinceAppID = "province"
	// DefaultProvinceAuthority is the provincial platform's authority code
	// (a valid unified social credit code) in the demo.
	DefaultProvinceAuthority = "11430000MB0000001B"
	// DefaultForeignType is the business license (营业执照) type code.
	DefaultForeignType = "11100000000013338W011"
)

// PushConfig configures a Pusher.
type PushConfig struct {
	HubURL      string
	Credentials client.Credentials // the provincial platform's app on the hub
	// Signer is the province's key; the envelopes' sender and the foreign
	// licenses' issuer are its authority.
	Signer signing.Signer
	Count  int // foreign licenses; 0: 10
	// Statuses is the number of status changes per license (suspend,
	// restore, suspend, ...; seq 1, 2, ...); 0: 1, negative: none.
	Statuses int
	// Shuffle sends the status changes in a random order (the licenses
	// always go first); Duplicate is the share of status changes sent
	// twice.
	Shuffle   bool
	Duplicate float64
	// Batch is the number of envelopes per request: 1 sends a single
	// envelope body, more sends {"envelopes":[...]}; 0: 50.
	Batch    int
	TypeCode string // 0: DefaultForeignType
	Seed     uint64 // 0: DefaultSeed
	HTTP     *http.Client
	Timeout  time.Duration // per request; 0: 30 s
	Attempts int           // per request, for 429, 5xx and transport errors; 0: 5
	Now      func() time.Time
}

// PushResult counts what a push sent.
type PushResult struct {
	Licenses int            `json:"licenses"`
	Events   int            `json:"events"`    // distinct events
	Sent     int            `json:"sent"`      // envelopes sent, duplicates included
	Requests int            `json:"requests"`  // HTTP requests, retries included
	Statuses map[int]int    `json:"statuses"`  // final HTTP status per request
	EventIDs []string       `json:"event_ids"` // the distinct events, in sending order
	Answers  []string       `json:"-"`         // the bodies of the final answers
	Ops      map[string]int `json:"ops"`
	// Refused counts envelopes the hub answered as rejected (in a 200
	// batch answer, or a single envelope's 4xx); Push then fails.
	Refused      int    `json:"refused"`
	FirstRefusal string `json:"first_refusal,omitempty"`
}

// Pusher sends foreign licenses and their status changes to the hub.
type Pusher struct{ cfg PushConfig }

// NewPusher checks cfg and returns a Pusher.
func NewPusher(cfg PushConfig) (*Pusher, error) {
	switch {
	case cfg.HubURL == "":
		return nil, fmt.Errorf("provsim: push: no hub URL")
	case cfg.Signer == nil:
		return nil, fmt.Errorf("provsim: push: no province signer")
	case cfg.Credentials.AppID == "" || len(cfg.Credentials.Secret) == 0:
		return nil, fmt.Errorf("provsim: push: the province app's ID and secret are required")
	case cfg.Duplicate < 0 || cfg.Duplicate > 1:
		return nil, fmt.Errorf("provsim: push: duplicate %v is not between 0 and 1", cfg.Duplicate)
	}
	if cfg.Count <= 0 {
		cfg.Count = 10
	}
	if cfg.Statuses == 0 {
		cfg.Statuses = 1
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 50
	}
	if cfg.TypeCode == "" {
		cfg.TypeCode = DefaultForeignType
	}
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Pusher{cfg: cfg}, nil
}

// Planned is one envelope of a push.
type Planned struct {
	Event    exchange.Event
	Envelope []byte
}

// Plan builds and signs the push's envelopes: the licenses, then the
// status changes (shuffled and duplicated as configured).
func (p *Pusher) Plan(ctx context.Context) (licenses, statuses []Planned, err error) {
	c := p.cfg
	authority := c.Signer.Key().Authority
	now := c.Now().UTC().Truncate(time.Second)
	at := now.Format(signing.SignedAtLayout)
	rnd := rand.New(rand.NewPCG(c.Seed, 0x9a5e))
	seal := func(ev exchange.Event) (Planned, error) {
		raw, err := exchange.Seal(ctx, c.Signer, &ev, now)
		return Planned{Event: ev, Envelope: raw}, err
	}
	for i := range c.Count {
		l, err := foreignLicense(c.TypeCode, authority, c.Seed, i, now)
		if err != nil {
			return nil, nil, err
		}
		body, err := json.Marshal(l)
		if err != nil {
			return nil, nil, err
		}
		doc, err := signing.Sign(ctx, c.Signer, body, now)
		if err != nil {
			return nil, nil, err
		}
		docRaw, err := doc.Marshal()
		if err != nil {
			return nil, nil, err
		}
		meta := &exchange.Meta{HolderName: l.Holder.Name, HolderCode: l.Holder.Code, HolderCodeType: l.Holder.CodeType,
			Name: l.Name, Number: l.Number, TypeCode: l.TypeCode, IssueDate: l.IssueDate,
			Department: l.Issuer.Name, DepartmentCode: l.Issuer.Code, AreaCode: l.AreaCode, Version: l.Version}
		pl, err := seal(exchange.Event{Sender: authority, ID: l.Identifier + "/" + license.OpNew, License: l.Identifier,
			Op: license.OpNew, Time: at, Meta: meta, Document: docRaw})
		if err != nil {
			return nil, nil, err
		}
		licenses = append(licenses, pl)
		from := license.StatusValid
		for seq := 1; seq <= c.Statuses; seq++ {
			op, to := license.OpSuspend, license.StatusSuspended
			if from == license.StatusSuspended {
				op, to = license.OpRestore, license.StatusValid
			}
			pl, err := seal(exchange.Event{Sender: authority, ID: l.Identifier + "/" + op + "/" + strconv.Itoa(seq),
				License: l.Identifier, Seq: seq, Op: op, Time: at, Meta: meta,
				Status: &exchange.StatusChange{From: string(from), To: string(to), Reason: "provincial simulator"}})
			if err != nil {
				return nil, nil, err
			}
			statuses = append(statuses, pl)
			from = to
		}
	}
	if c.Shuffle {
		rnd.Shuffle(len(statuses), func(i, j int) { statuses[i], statuses[j] = statuses[j], statuses[i] })
	}
	if c.Duplicate > 0 {
		var out []Planned
		for _, s := range statuses {
			out = append(out, s)
			if rnd.Float64() < c.Duplicate {
				out = append(out, s)
			}
		}
		if c.Shuffle {
			rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		}
		statuses = out
	}
	return licenses, statuses, nil
}

// foreignLicense is the i-th license the province pushes.
func foreignLicense(typeCode, authority string, seed uint64, i int, now time.Time) (*license.License, error) {
	serial := fmt.Sprintf("PS%04d%08d", seed%10000, i)
	id, err := ident.New(typeCode, authority, serial, 1)
	if err != nil {
		return nil, err
	}
	first17 := fmt.Sprintf("91430100MA%07d", (uint64(i)+seed)%10_000_000)
	check, err := ident.CreditCodeCheck(first17)
	if err != nil {
		return nil, err
	}
	issue := now.In(license.CST).Format(license.DateLayout)
	return &license.License{
		Identifier: id.String(), Name: "营业执照", TypeCode: typeCode, TypeName: "营业执照",
		Number: serial, Version: "001",
		Issuer:    license.Party{Name: "外省市场监督管理局", Code: authority},
		IssueDate: issue, ValidFrom: issue, ValidUntil: license.LongTerm,
		Holder:   license.Holder{Name: fmt.Sprintf("省内示范企业%d有限公司", i), Code: first17 + string(check), CodeType: ident.HolderCreditCode},
		AreaCode: "430100",
		Fields:   map[string]any{"legal_representative": "李四"},
		Provenance: &license.Provenance{Kind: license.ProvenanceProvince, Source: authority,
			EventID: id.String() + "/" + license.OpNew},
	}, nil
}

// Push sends the plan: the licenses first (batch by batch), then the
// status changes.
func (p *Pusher) Push(ctx context.Context) (PushResult, error) {
	lics, sts, err := p.Plan(ctx)
	res := PushResult{Statuses: map[int]int{}, Ops: map[string]int{}}
	if err != nil {
		return res, err
	}
	seen := map[string]bool{}
	for _, group := range [][]Planned{lics, sts} {
		for start := 0; start < len(group); start += p.cfg.Batch {
			batch := group[start:min(start+p.cfg.Batch, len(group))]
			if err := p.send(ctx, batch, &res); err != nil {
				return res, err
			}
			for _, pl := range batch {
				res.Sent++
				if !seen[pl.Event.ID] {
					seen[pl.Event.ID] = true
					res.Events++
					res.Ops[pl.Event.Op]++
					res.EventIDs = append(res.EventIDs, pl.Event.ID)
				}
			}
		}
	}
	res.Licenses = len(lics)
	if res.Refused > 0 {
		return res, fmt.Errorf("provsim: push: the hub refused %d envelopes; first: %s", res.Refused, clipText([]byte(res.FirstRefusal)))
	}
	return res, nil
}

func (p *Pusher) send(ctx context.Context, batch []Planned, res *PushResult) error {
	var body []byte
	if len(batch) == 1 && p.cfg.Batch == 1 {
		body = batch[0].Envelope
	} else {
		envs := make([]json.RawMessage, len(batch))
		for i, pl := range batch {
			envs[i] = pl.Envelope
		}
		var err error
		if body, err = json.Marshal(map[string]any{"envelopes": envs}); err != nil {
			return err
		}
	}
	url := strings.TrimRight(p.cfg.HubURL, "/") + InboundPath
	var last error
	for attempt := range p.cfg.Attempts {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * 200 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		status, answer, err := p.post(ctx, url, body)
		res.Requests++
		switch {
		case err != nil:
			last = err
			continue
		case status == http.StatusTooManyRequests || status >= 500:
			last = fmt.Errorf("provsim: push: HTTP %d: %s", status, clipText(answer))
			continue
		}
		res.Statuses[status]++
		res.Answers = append(res.Answers, string(answer))
		if status/100 != 2 {
			res.Refused += len(batch)
			return fmt.Errorf("provsim: push: HTTP %d: %s", status, clipText(answer))
		}
		var outcome struct {
			Results []struct {
				EventID string `json:"event_id"`
				Outcome string `json:"outcome"`
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"results"`
		}
		if json.Unmarshal(answer, &outcome) == nil {
			for _, r := range outcome.Results {
				if r.Outcome == "rejected" {
					res.Refused++
					if res.FirstRefusal == "" {
						res.FirstRefusal = r.EventID + ": " + r.Code + " " + r.Message
					}
				}
			}
		}
		return nil
	}
	return last
}

func (p *Pusher) post(ctx context.Context, url string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := client.SignRequest(req, body, p.cfg.Credentials, time.Now()); err != nil {
		return 0, nil, err
	}
	resp, err := p.cfg.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}

func clipText(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
