package license

import (
	"context"
	"errors"
	"time"

	"github.com/licensehub/licensehub"
	"github.com/licensehub/licensehub/lease"
)

// SweeperApp is the app recorded on the status records the sweeper makes.
const SweeperApp = "sweeper"

const sweepBatch = 256

// ExpireDue expires every license whose validity ended at or before now
// (candidates from the lic:expiry sorted set, score = end of validity) and
// returns how many it expired. Several instances may call it: the
// lic:sweeper lease (package lease, renewed while the round runs; a round
// that loses it stops) lets one sweep at a time, and even without it the
// create-only status record makes a double expiry impossible (the second
// writer re-reads, finds "expired" and stops). An instance that does not
// get the lease returns 0, nil.
func (l *Library) ExpireDue(ctx context.Context, now time.Time) (int, error) {
	expired := 0
	o := lease.Options{Owner: lease.DefaultOwner(), TTL: max(10*l.cfg.OpTimeout, time.Minute), OpTimeout: l.cfg.OpTimeout}
	_, err := lease.Run(ctx, l.cfg.KV, kvSweeper, o, func(ctx context.Context, _ *lease.Lease) (err error) {
		expired, err = l.expireDue(ctx, now)
		return err
	})
	if errors.Is(err, lease.ErrLost) {
		l.log.WarnContext(ctx, "sweeper lost its lease; another instance sweeps", "expired", expired, "err", err)
		return expired, nil
	}
	return expired, err
}

// expireDue is one sweeping round, run under the lic:sweeper lease.
func (l *Library) expireDue(ctx context.Context, now time.Time) (int, error) {
	expired := 0
	skip := map[string]bool{} // failed this round: do not loop on them
	for ctx.Err() == nil {
		var due []licensehub.ScoredMember
		if err := l.kvDo(ctx, func(c context.Context) (err error) {
			due, err = l.cfg.KV.ZRangeByScore(c, kvExpiry, 0, float64(now.Unix()), sweepBatch+len(skip))
			return err
		}); err != nil {
			return expired, err
		}
		progress := false
		for _, m := range due {
			if skip[m.Member] {
				continue
			}
			progress = true
			_, err := l.ChangeStatus(ctx, m.Member, OpExpire, "validity period ended", SweeperApp)
			switch {
			case err == nil:
				expired++
			case isCode(err, licensehub.EILLEGALTRANSITION), isCode(err, licensehub.ECONFLICT),
				isCode(err, licensehub.ELICNOTFOUND), isCode(err, licensehub.EINVALID):
				// Already terminal (or gone): no longer a candidate.
				_ = l.kvDo(ctx, func(c context.Context) error { return l.cfg.KV.ZRem(c, kvExpiry, m.Member) })
			default:
				l.log.WarnContext(ctx, "sweeper could not expire a license", "identifier", m.Member, "err", err)
				skip[m.Member] = true
			}
		}
		if !progress {
			break
		}
	}
	if expired > 0 {
		l.log.InfoContext(ctx, "sweeper expired licenses", "count", expired)
	}
	return expired, ctx.Err()
}

// RunSweeper calls ExpireDue every interval (and once at start) until ctx
// ends.
func (l *Library) RunSweeper(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := l.ExpireDue(ctx, l.cfg.Clock()); err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "sweeper round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
