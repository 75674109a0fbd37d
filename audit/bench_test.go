package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// BenchmarkAppend measures Trail.Append over the file journal (the
// embedded mode: validate, encode, write, fsync) against writing and
// fsyncing the same bytes to a file directly. One appender at a time, so
// every append pays a whole fsync.
func BenchmarkAppend(b *testing.B) {
	h, data := benchHub(b)
	r := benchRecord(h)
	b.Run("hub", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := h.Append(b.Context(), r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-fsync", func(b *testing.B) {
		f := benchFile(b)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Write(data); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendParallel is BenchmarkAppend with concurrent appenders
// (GOMAXPROCS × 8 goroutines): the file journal shares fsyncs among them
// (group commit); the baseline writes and fsyncs each record under a
// mutex, as a journal without group commit would.
func BenchmarkAppendParallel(b *testing.B) {
	h, data := benchHub(b)
	r := benchRecord(h)
	b.Run("hub", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := h.Append(b.Context(), r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("raw-fsync", func(b *testing.B) {
		f := benchFile(b)
		var mu sync.Mutex
		b.SetBytes(int64(len(data)))
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				_, err := f.Write(data)
				if err == nil {
					err = f.Sync()
				}
				mu.Unlock()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func benchHub(b *testing.B) (*hub, []byte) {
	j, err := OpenFileJournal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	h := newHub(b, openFS(b), j, keyring(b), openMem(b))
	data, err := json.Marshal(benchRecord(h))
	if err != nil {
		b.Fatal(err)
	}
	return h, data
}

func benchRecord(h *hub) Record {
	r := record("app-bench", "license.read")
	r.Operator = &Operator{Account: "zhang3", Name: "张三", Department: "市场监管局", Role: "approver"}
	h.SetHolder(&r, "110105199001010027")
	r.InstanceID = h.InstanceID()
	return r
}

func benchFile(b *testing.B) *os.File {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}
