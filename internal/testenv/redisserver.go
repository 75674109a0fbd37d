package testenv

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server of the test's own, started as
// scripts/lib/services.sh starts the suite's (no persistence) on a free
// 127.0.0.1 port, so that the test may kill it and start it again empty
// on the same port, or start it with settings the shared server must not
// have. It is killed when the test ends.
type RedisServer struct {
	tb   testing.TB
	bin  string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server with extra command-line args (e.g.
// "--maxmemory-policy", "allkeys-lru") and waits until it answers. It
// skips (fails, under the test command) when redis-server is not
// installed.
func StartRedis(tb testing.TB, args ...string) *RedisServer {
	tb.Helper()
	bin := RequireTool(tb, "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &RedisServer{tb: tb, bin: bin, port: port, dir: tb.TempDir(), args: args}
	tb.Cleanup(func() { r.Kill() })
	r.start()
	return r
}

// URL is the server's redis:// URL (database 0).
func (r *RedisServer) URL() string { return "redis://" + r.Addr() + "/0" }

// Addr is the server's host:port.
func (r *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Kill stops the server with SIGKILL (no shutdown, no save) and waits for
// it to exit. Killing a stopped server does nothing.
func (r *RedisServer) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Restart starts the server again, empty, on the same port, and waits
// until it answers.
func (r *RedisServer) Restart() {
	r.tb.Helper()
	r.Kill()
	r.start()
}

func (r *RedisServer) start() {
	r.tb.Helper()
	args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--daemonize", "no", "--logfile", ""}, r.args...)
	cmd := exec.Command(r.bin, args...)
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("starting redis-server: %v", err)
	}
	r.cmd = cmd
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	// A bound, not a premise: the server normally answers within
	// milliseconds.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("redis-server on %s did not answer: %v", r.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// String names the server for messages.
func (r *RedisServer) String() string { return fmt.Sprintf("redis-server on %s", r.Addr()) }
