// openloop sends HTTP requests at a fixed rate, whatever the server's answers take, and
// reports latency percentiles measured from each request's scheduled start (so a slow
// answer delays nothing and hides nothing: no coordinated omission, unlike wrk).
// Standard library only. Traffic goes to the URL given (the benchmark uses 127.0.0.1).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

type result struct {
	Rate     float64 `json:"rate"`
	Sent     int     `json:"sent"`
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Max      float64 `json:"max_ms"`
	Achieved float64 `json:"achieved_rate"`
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "server base URL")
	rate := flag.Float64("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 64, "connections at most")
	ads := flag.Int("ads", 1000, "spread POST /ads/AD{n}/impression over this many ads")
	flag.Parse()

	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: *conns,
			MaxConnsPerHost:     *conns,
			DisableCompression:  true,
		},
	}
	total := int(*rate * duration.Seconds())
	interval := time.Duration(float64(time.Second) / *rate)
	latencies := make([]time.Duration, total)
	failed := make([]bool, total)
	schedule := make(chan int, total)
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	// Enough senders that a free one is always waiting; connections are capped by the transport.
	for w := 0; w < *conns*4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range schedule {
				due := start.Add(time.Duration(i) * interval)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				url := fmt.Sprintf("%s/ads/AD%d/impression", *base, i%*ads)
				resp, err := client.Post(url, "", nil)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				latencies[i] = time.Since(due)
				failed[i] = err != nil || resp.StatusCode != http.StatusOK
			}
		}()
	}
	for i := 0; i < total; i++ {
		schedule <- i
	}
	close(schedule)
	wg.Wait()
	elapsed := time.Since(start)

	ok, bad := []float64{}, 0
	for i, l := range latencies {
		if failed[i] {
			bad++
		}
		ok = append(ok, float64(l.Microseconds())/1000)
	}
	sort.Float64s(ok)
	at := func(q float64) float64 { return ok[int(q*float64(len(ok)-1))] }
	json.NewEncoder(os.Stdout).Encode(result{
		Rate: *rate, Sent: total, OK: total - bad, Failed: bad,
		P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: ok[len(ok)-1],
		Achieved: float64(total) / elapsed.Seconds(),
	})
}
