// Command leader-peer is a client-go leader-election candidate on a Lease.
//
// It is leader-run's interoperability peer and performance baseline: it uses
// tools/leaderelection with a LeaseLock exactly as a Go controller would, and
// reports every election event as one JSON line on stdout so tests can read
// them. Logs from client-go go to stderr.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"golang.org/x/sys/unix"
)

var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

// ledger appends the lines the end-to-end tests' workers write (start, a beat every 20 ms,
// stop) while this peer leads, so the chaos run can measure the peer's term against the
// children of leader-run candidates on the same host clock.
type ledger struct {
	f    *os.File
	name string
}

func (l *ledger) line(ev string) {
	if l == nil {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	mono := float64(ts.Sec)*1e3 + float64(ts.Nsec)/1e6
	// One write per line: appends from several processes never interleave.
	_, _ = fmt.Fprintf(l.f, "{\"ev\":%q,\"name\":%q,\"pid\":%d,\"mono\":%.3f,\"wall\":%d}\n", ev, l.name, os.Getpid(), mono, time.Now().UnixMilli())
}

// lead beats until the term's context ends, never after: the ledger must not show the
// peer working once client-go has given the Lease up.
func (l *ledger) lead(ctx context.Context) {
	if l == nil {
		return
	}
	l.line("start")
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil {
				return
			}
			l.line("beat")
		}
	}
}

// emit writes one event line; ms is wall-clock milliseconds since the epoch.
func emit(event string, fields map[string]any) {
	line := map[string]any{"event": event, "ms": time.Now().UnixMilli()}
	for k, v := range fields {
		line[k] = v
	}
	out.Lock()
	defer out.Unlock()
	_ = out.enc.Encode(line)
}

func main() {
	id := flag.String("id", "", "holder identity (required)")
	lockName := flag.String("lock-name", "", "Lease name (required)")
	lockNamespace := flag.String("lock-namespace", "default", "Lease namespace")
	leaseDuration := flag.Duration("lease-duration", 15*time.Second, "lease duration")
	renewDeadline := flag.Duration("renew-deadline", 10*time.Second, "renew deadline")
	retryPeriod := flag.Duration("retry-period", 2*time.Second, "retry period")
	kubeconfig := flag.String("kubeconfig", "", "path to a kubeconfig")
	userAgent := flag.String("user-agent", "", "HTTP user agent (lets the apiserver's metrics tell candidates apart)")
	ledgerPath := flag.String("ledger", "", "append start/beat lines to this file while leading (the tests' ledger)")
	ledgerName := flag.String("ledger-name", "", "the name on the ledger lines (default: the id)")
	coordinated := flag.Bool("coordinated", false, "coordinated leader election (KEP-4355): register a LeaseCandidate named by --id")
	binaryVersion := flag.String("binary-version", "1.36.0", "with --coordinated: the candidate's binary version")
	emulationVersion := flag.String("emulation-version", "", "with --coordinated: the candidate's emulation version (default: the binary version)")
	flag.Parse()
	if *id == "" || *lockName == "" {
		fmt.Fprintln(os.Stderr, "leader-peer: --id and --lock-name are required")
		os.Exit(64)
	}

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "leader-peer: kubeconfig:", err)
		os.Exit(78)
	}
	if *userAgent != "" {
		cfg.UserAgent = *userAgent
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	var work *ledger
	if *ledgerPath != "" {
		f, err := os.OpenFile(*ledgerPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "leader-peer: ledger:", err)
			os.Exit(73)
		}
		work = &ledger{f: f, name: *ledgerName}
		if work.name == "" {
			work.name = *id
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		cancel()
	}()

	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: *lockName, Namespace: *lockNamespace},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: *id},
	}
	if *coordinated {
		if *emulationVersion == "" {
			*emulationVersion = *binaryVersion
		}
		// As kube-scheduler does: the candidate is named by the lock identity.
		candidate, _, err := leaderelection.NewCandidate(client, *lockNamespace, *id, *lockName, *binaryVersion, *emulationVersion, coordinationv1.OldestEmulationVersion)
		if err != nil {
			fmt.Fprintln(os.Stderr, "leader-peer: candidate:", err)
			os.Exit(70)
		}
		go candidate.Run(ctx)
	}
	emit("campaigning", map[string]any{"id": *id})
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Coordinated:     *coordinated,
		ReleaseOnCancel: true,
		LeaseDuration:   *leaseDuration,
		RenewDeadline:   *renewDeadline,
		RetryPeriod:     *retryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				emit("started-leading", map[string]any{"id": *id})
				work.lead(ctx)
			},
			OnStoppedLeading: func() { emit("stopped-leading", map[string]any{"id": *id}) },
			OnNewLeader:      func(identity string) { emit("new-leader", map[string]any{"id": *id, "leader": identity}) },
		},
	})
	emit("exit", map[string]any{"id": *id})
}
