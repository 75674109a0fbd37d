package main

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/ident"
	"github.com/licensehub/licensehub/internal/testenv"
	"github.com/licensehub/licensehub/internal/testenv/testkeys"
	"github.com/licensehub/licensehub/license"
	"github.com/licensehub/licensehub/store/fs"
	"github.com/licensehub/licensehub/store/redis"
)

// testPush is the push of a business license numbered number, issued by
// issuer to holder.
func testPush(issuer, holder, number string) license.PushRequest {
	return license.PushRequest{App: "test", TypeCode: "11100000000013338W011",
		Issuer: license.Party{Name: "湖南省市场监督管理局", Code: issuer}, Number: number,
		Holder:    license.Holder{Name: "长沙示范科技有限公司", Code: holder, CodeType: ident.HolderCreditCode},
		IssueDate: "2023-03-01", ValidFrom: "2023-03-01", AreaCode: "430100",
		Fields: map[string]any{"unified_social_credit_code": holder, "name": "长沙示范科技有限公司", "entity_type": "有限责任公司",
			"legal_representative": "张三", "established_date": "2023-03-01", "business_term_to": "long-term",
			"address": "长沙市岳麓区示范路1号", "business_scope": "软件开发", "registration_authority": "长沙市市场监督管理局"}}
}

// TestReindex: licenses pushed, Redis emptied, `hubctl reindex` run, and
// lookups answer exactly as before.
func TestReindex(t *testing.T) {
	redisURL := testenv.RequireRedis(t)
	prefix := testenv.Name(t) + ":"
	data := t.TempDir()
	keys := filepath.Join(data, "keys")
	now := time.Now().UTC()
	ring := testkeys.KeyringIn(t, keys, now.Add(-time.Hour), now.AddDate(1, 0, 0), "11430000006122244L")
	objects, err := fs.Open(filepath.Join(data, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := redis.Open(context.Background(), redis.Config{URL: redisURL, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	catDir := filepath.Join("..", "..", "configs", "catalog")
	cat, err := catalog.Load(catDir)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := license.NewLibrary(license.Config{Objects: objects, KV: kv, Signers: ring,
		Catalog: license.CatalogFunc(cat.Validator), DefaultValidUntil: cat.DefaultValidUntil, TypeName: cat.TypeName})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const holder = "91350100M000100Y43"
	var ids []string
	for _, number := range []string{"A1001", "A1002"} {
		out, err := lib.Push(ctx, testPush("11430000006122244L", holder, number))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.Identifier)
	}
	if _, err := lib.ChangeStatus(ctx, ids[1], license.OpSuspend, "检查", "test"); err != nil {
		t.Fatal(err)
	}
	before, err := lib.ByHolder(ctx, holder)
	if err != nil || len(before) != 2 {
		t.Fatalf("ByHolder before: %v %v", before, err)
	}

	// Lose Redis: every key of this test goes.
	c := kv.Client()
	keysInRedis, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keysInRedis) == 0 {
		t.Fatalf("no index keys to lose: %v", err)
	}
	if err := c.Del(ctx, keysInRedis...).Err(); err != nil {
		t.Fatal(err)
	}

	for k, v := range map[string]string{"HUB_REDIS_URL": redisURL, "HUB_REDIS_PREFIX": prefix, "HUB_DATA_DIR": data,
		"HUB_SIGNING_KEYS_DIR": keys, "HUB_CATALOG_DIR": catDir} {
		t.Setenv(k, v)
	}
	code, out, stderr := hubctl(t, "reindex")
	if code != 0 || !strings.Contains(out, "reindexed 2 licenses") {
		t.Fatalf("hubctl reindex: exit %d\n%s%s", code, out, stderr)
	}
	after, err := lib.ByHolder(ctx, holder)
	if err != nil || !reflect.DeepEqual(before, after) {
		t.Errorf("ByHolder after reindex:\n%+v\nwant\n%+v (%v)", after, before, err)
	}
	if st, err := lib.Status(ctx, ids[1]); err != nil || st != license.StatusSuspended {
		t.Errorf("status after reindex: %v %v", st, err)
	}
}
