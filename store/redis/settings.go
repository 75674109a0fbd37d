package redis

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/licensehub/licensehub"
)

// Setting names, in the order Settings reports them.
const (
	SettingEviction    = "maxmemory-policy"
	SettingCluster     = "cluster_enabled"
	SettingRole        = "role"
	SettingVersion     = "redis_version"
	SettingPersistence = "persistence"
)

// minVersion is the oldest server the store works with: XTRIM MINID and
// ZRANGE BYSCORE came with 6.2.
var minVersion = [2]int{6, 2}

// Settings reads the server settings the hub depends on and judges them
// (see Judge). It never fails: a setting the server will not tell (CONFIG
// disabled or denied, as on many managed services, and INFO too) is
// VerdictUnknown. CONFIG GET is asked first; INFO fills in what it can
// when CONFIG is unavailable.
func (s *Store) Settings(ctx context.Context) []licensehub.BackendSetting {
	values := map[string]string{}
	for _, name := range []string{"maxmemory", "maxmemory-policy", "appendonly", "save"} {
		v, err := run(ctx, s, "CONFIG GET", "", func(ctx context.Context) (map[string]string, error) {
			return s.c.ConfigGet(ctx, name).Result()
		})
		if err != nil {
			continue
		}
		if val, ok := v[name]; ok {
			values[name] = val
		}
	}
	info, err := run(ctx, s, "INFO", "", func(ctx context.Context) (string, error) {
		return s.c.Info(ctx).Result()
	})
	if err == nil {
		fields := parseInfo(info)
		for _, name := range []string{"cluster_enabled", "role", "redis_version"} {
			if v, ok := fields[name]; ok {
				values[name] = v
			}
		}
		fallback := func(name, field string, conv func(string) string) {
			if v, ok := fields[field]; ok {
				if _, known := values[name]; !known {
					values[name] = conv(v)
				}
			}
		}
		same := func(v string) string { return v }
		fallback("maxmemory", "maxmemory", same)
		fallback("maxmemory-policy", "maxmemory_policy", same)
		fallback("appendonly", "aof_enabled", func(v string) string {
			if v == "1" {
				return "yes"
			}
			return "no"
		})
	}
	return Judge(values)
}

// parseInfo reads INFO's "field:value" lines.
func parseInfo(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// Judge gives the verdict on each setting the hub depends on, from the
// values read (CONFIG GET names: maxmemory, maxmemory-policy, appendonly,
// save; INFO fields: cluster_enabled, role, redis_version). A value
// absent from values is unknown.
//
//   - maxmemory-policy must be noeviction: an evicting server silently
//     drops nonces (replays accepted), leases (two holders) and index
//     entries. Refused when maxmemory is set; a warning when it is 0
//     (nothing is evicted until someone sets it).
//   - cluster_enabled must be 0: the store speaks to one server (a
//     cluster's MOVED replies and cross-slot commands are not handled).
//   - role must be master: a replica refuses writes.
//   - redis_version at least 6.2 (XTRIM MINID, ZRANGE BYSCORE).
//   - persistence (appendonly, save): the hub does not rely on it, but a
//     server that restarts empty leaves the license indexes empty until
//     `hubctl reindex`: a warning when both are off.
func Judge(values map[string]string) []licensehub.BackendSetting {
	get := func(name string) (string, bool) { v, ok := values[name]; return v, ok }
	var out []licensehub.BackendSetting
	add := func(name, value, verdict, note string) {
		out = append(out, licensehub.BackendSetting{Name: name, Value: value, Verdict: verdict, Note: note})
	}
	unknown := func(name string) {
		add(name, "", licensehub.VerdictUnknown, "the server did not say (CONFIG and INFO disabled or denied); check it by hand")
	}

	// Eviction.
	if policy, ok := get("maxmemory-policy"); !ok {
		unknown(SettingEviction)
	} else {
		limit, limitKnown := get("maxmemory")
		value := policy
		if limitKnown {
			value = fmt.Sprintf("%s (maxmemory %s)", policy, limit)
		}
		switch {
		case policy == "noeviction":
			add(SettingEviction, value, licensehub.VerdictOK, "")
		case limitKnown && limit == "0":
			add(SettingEviction, value, licensehub.VerdictWarn,
				"set maxmemory-policy noeviction: nothing is evicted while maxmemory is 0, but once it is set this policy silently drops nonces, leases and index entries")
		default:
			add(SettingEviction, value, licensehub.VerdictRefuse,
				"set maxmemory-policy noeviction: an evicting Redis silently drops nonces (replayed requests accepted), leases and index entries")
		}
	}

	// Cluster mode, role and version: one value each, fine or refused.
	for _, r := range []struct {
		setting, field string
		fine           func(string) bool
		refusal        string
	}{
		{SettingCluster, "cluster_enabled", func(v string) bool { return v == "0" },
			"Redis Cluster is not supported yet: point redis.url at a single primary (with replicas if wanted)"},
		{SettingRole, "role", func(v string) bool { return v == "master" },
			"this server is a replica and refuses writes: point redis.url at the primary"},
		{SettingVersion, "redis_version", func(v string) bool { return versionAtLeast(v, minVersion) },
			fmt.Sprintf("Redis %d.%d or later is needed", minVersion[0], minVersion[1])},
	} {
		switch v, ok := get(r.field); {
		case !ok:
			unknown(r.setting)
		case r.fine(v):
			add(r.setting, v, licensehub.VerdictOK, "")
		default:
			add(r.setting, v, licensehub.VerdictRefuse, r.refusal)
		}
	}

	// Persistence.
	aof, aofKnown := get("appendonly")
	save, saveKnown := get("save")
	switch {
	case !aofKnown && !saveKnown:
		unknown(SettingPersistence)
	default:
		var parts []string
		if aofKnown {
			parts = append(parts, "appendonly "+aof)
		}
		if saveKnown {
			parts = append(parts, fmt.Sprintf("save %q", save))
		}
		value := strings.Join(parts, ", ")
		switch {
		case aofKnown && aof == "yes" || saveKnown && strings.TrimSpace(save) != "":
			add(SettingPersistence, value, licensehub.VerdictOK, "")
		case aofKnown && saveKnown:
			add(SettingPersistence, value, licensehub.VerdictWarn,
				"no persistence: the hub loses nothing acknowledged with Redis, but a Redis that restarts empty finds no license by holder until `hubctl reindex`")
		default:
			add(SettingPersistence, value, licensehub.VerdictUnknown, "only part of the persistence settings could be read")
		}
	}
	return out
}

// versionAtLeast reports whether v ("7.0.15") is at least min.
func versionAtLeast(v string, min [2]int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > min[0] || major == min[0] && minor >= min[1]
}

// Refusals returns the settings whose verdict is VerdictRefuse.
func Refusals(settings []licensehub.BackendSetting) []licensehub.BackendSetting {
	var out []licensehub.BackendSetting
	for _, st := range settings {
		if st.Verdict == licensehub.VerdictRefuse {
			out = append(out, st)
		}
	}
	return out
}
