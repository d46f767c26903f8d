package localnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// MinNodeHeight is the height a node must reach to count as healthy: block
// 1 is the genesis block's successor; a second block shows consensus goes
// on (for an init network, that enough validators are connected).
const MinNodeHeight = 2

// probeClient is the HTTP client of the health probes.
var probeClient = &http.Client{Timeout: 2 * time.Second}

func get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// nodeHeight asks a node's RPC /status for its latest block height.
func nodeHeight(ctx context.Context, rpcPort int) (int64, error) {
	code, b, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/status", rpcPort))
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/status: HTTP %d", code)
	}
	var r struct {
		Result struct {
			SyncInfo struct {
				Height string `json:"latest_block_height"`
			} `json:"sync_info"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("/status: %w", err)
	}
	return strconv.ParseInt(r.Result.SyncInfo.Height, 10, 64)
}

// nodeHealthy: /status answers with a height of at least MinNodeHeight.
func nodeHealthy(ctx context.Context, n *Node) (bool, string) {
	h, err := nodeHeight(ctx, n.Ports.RPC)
	if err != nil {
		return false, err.Error()
	}
	if h < MinNodeHeight {
		return false, fmt.Sprintf("height %d", h)
	}
	return true, fmt.Sprintf("height %d", h)
}

// validateerHealthy: GET /is_initialized on the health port answers 200,
// which integritee-service does once its enclave is registered on the
// parentchain and its shard has a sidechain block (404 before).
func validateerHealthy(ctx context.Context, v *Validateer) (bool, string) {
	code, _, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/is_initialized", v.Ports.Health))
	if err != nil {
		return false, err.Error()
	}
	return code == http.StatusOK, fmt.Sprintf("/is_initialized: HTTP %d", code)
}

// prometheusHealthy: Prometheus's /-/ready answers 200.
func prometheusHealthy(ctx context.Context, port int) (bool, string) {
	code, _, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/-/ready", port))
	if err != nil {
		return false, err.Error()
	}
	return code == http.StatusOK, fmt.Sprintf("/-/ready: HTTP %d", code)
}

// portFree reports whether nothing listens on 127.0.0.1:port.
func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}
