package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnv_ParseArgs: every flag can come from MEMBENCH_<FLAG> (dashes as underscores); the command line wins.
func TestEnv_ParseArgs(t *testing.T) {
	t.Setenv("MEMBENCH_N", "5")
	t.Setenv("MEMBENCH_JSON", "true")
	t.Setenv("MEMBENCH_NOT_A_FLAG", "x") // variables naming no flag of the command are left alone
	got, _, err := parseTestArgs([]string{"a", "--out", "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if got.n != 5 || !got.json || got.out != "cli" || strings.Join(got.set, ",") != "json,n,out" {
		t.Fatalf("from the environment: %+v", got)
	}
	got, _, err = parseTestArgs([]string{"-n", "7"})
	if err != nil || got.n != 7 {
		t.Fatalf("the command line does not win: %+v %v", got, err)
	}
	t.Setenv("MEMBENCH_N", "many")
	_, _, err = parseTestArgs(nil)
	if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `MEMBENCH_N="many"`) ||
		!strings.Contains(err.Error(), "-n") {
		t.Fatalf("a bad value in the environment: %v", err)
	}
	t.Setenv("MEMBENCH_N", "")
	if _, _, err = parseTestArgs([]string{"-n", "3"}); err != nil {
		t.Fatalf("a bad variable for a flag the command line gives: %v", err)
	}
}

// TestEnv_HelpSaysSo: each command's --help (and `membench help CMD`) says that its flags can come from the
// environment.
func TestEnv_HelpSaysSo(t *testing.T) {
	for name := range commands {
		if name == "help" || name == "version" || strings.HasPrefix(name, "t-") {
			continue // no flags
		}
		for _, args := range [][]string{{name, "--help"}, {"help", name}} {
			code, out, _ := runCLI(t, args...)
			if code != 0 || !strings.Contains(out, "MEMBENCH_") || !strings.Contains(out, "command line wins") {
				t.Errorf("membench %s: exit %d, no word of the environment:\n%s", strings.Join(args, " "), code, out)
			}
		}
	}
	code, out, _ := runCLI(t, "replay", "--help")
	if code != 0 || !strings.Contains(out, "MEMBENCH_SHARD") || !strings.Contains(out, "MEMBENCH_TARGET") {
		t.Errorf("replay --help names no example variable:\n%s", out)
	}
}

// TestReplayConfig_Env: replay flags from the environment, between the command line and the config file.
func TestReplayConfig_Env(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "r.toml")
	if err := os.WriteFile(cf, []byte("profile = \"x.mbp\"\ntargets = [\"file:1\"]\npipeline = 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MEMBENCH_CONFIG", cf)
	t.Setenv("MEMBENCH_TARGET", "env:1,env:2")
	t.Setenv("MEMBENCH_SHARD", "1/3")
	t.Setenv("MEMBENCH_PIPELINE", "8")
	t.Setenv("MEMBENCH_CONNECT_TIMEOUT", "3s")
	cfg, _, err := replayConfig([]string{"--pipeline", "9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Profile != "x.mbp" || strings.Join(cfg.Targets, ",") != "env:1,env:2" || cfg.Shard != "1/3" ||
		cfg.Pipeline != 9 || cfg.ConnectTimeout.D().String() != "3s" {
		t.Fatalf("config %+v", cfg)
	}
}

// TestReplayConfig_ShardIndexEnv: --shard-index-env NAME --shards N reads the index from NAME, as a Kubernetes
// Indexed Job gives it (JOB_COMPLETION_INDEX), with a clear error when it is unset or out of range.
func TestReplayConfig_ShardIndexEnv(t *testing.T) {
	base := []string{"--profile", "p.mbp", "--target", "h:1", "--shard-index-env", "JOB_COMPLETION_INDEX"}
	t.Setenv("JOB_COMPLETION_INDEX", "3")
	cfg, _, err := replayConfig(append(base, "--shards", "4"), io.Discard)
	if err != nil || cfg.Shard != "3/4" {
		t.Fatalf("shard %q, %v", cfg.Shard, err)
	}
	t.Setenv("MEMBENCH_SHARDS", "4") // the same from the environment
	if cfg, _, err = replayConfig(base, io.Discard); err != nil || cfg.Shard != "3/4" {
		t.Fatalf("shards from MEMBENCH_SHARDS: shard %q, %v", cfg.Shard, err)
	}
	f := func(index string, args []string, want string) {
		t.Helper()
		if index == "unset" {
			os.Unsetenv("JOB_COMPLETION_INDEX")
		} else {
			t.Setenv("JOB_COMPLETION_INDEX", index)
		}
		_, _, err := replayConfig(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("JOB_COMPLETION_INDEX=%s %q: error %v, want %q", index, args, err, want)
		}
	}
	f("4", base, `JOB_COMPLETION_INDEX = "4" is not a shard index, a whole number in [0,4)`)
	f("x", base, "[0,4)")
	f("0", append(base, "--shard", "0/4"), "not both")
	t.Setenv("MEMBENCH_SHARDS", "")
	os.Unsetenv("MEMBENCH_SHARDS")
	f("1", base, "--shards N")
	f("unset", append(base, "--shards", "4"), "JOB_COMPLETION_INDEX is not set")
}
