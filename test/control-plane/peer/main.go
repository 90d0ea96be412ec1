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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

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
	emit("campaigning", map[string]any{"id": *id})
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		ReleaseOnCancel: true,
		LeaseDuration:   *leaseDuration,
		RenewDeadline:   *renewDeadline,
		RetryPeriod:     *retryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { emit("started-leading", map[string]any{"id": *id}) },
			OnStoppedLeading: func() { emit("stopped-leading", map[string]any{"id": *id}) },
			OnNewLeader:      func(identity string) { emit("new-leader", map[string]any{"id": *id, "leader": identity}) },
		},
	})
	emit("exit", map[string]any{"id": *id})
}
