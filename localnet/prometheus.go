package localnet

import (
	"fmt"
	"strings"
)

// PrometheusBinary is the Prometheus server the launcher runs, as Debian's
// prometheus package installs it.
const PrometheusBinary = "prometheus"

// PrometheusScrapeInterval is how often the generated configuration scrapes.
const PrometheusScrapeInterval = "5s"

// PrometheusConfig returns a prometheus.yml scraping every node's and
// validateer's /metrics, one job per program, each target labelled with
// the process's name.
func PrometheusConfig(n *Network) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by integritee-localnet.\nglobal:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n",
		PrometheusScrapeInterval, PrometheusScrapeInterval)
	job := func(name string, targets [][2]string) {
		if len(targets) == 0 {
			return
		}
		fmt.Fprintf(&b, "  - job_name: %s\n    metrics_path: /metrics\n    static_configs:\n", name)
		for _, t := range targets {
			fmt.Fprintf(&b, "      - targets: [\"%s\"]\n        labels:\n          name: \"%s\"\n", t[0], t[1])
		}
	}
	var nodes, vals [][2]string
	for _, nd := range n.Nodes {
		nodes = append(nodes, [2]string{fmt.Sprintf("127.0.0.1:%d", nd.Ports.Prometheus), nd.Name})
	}
	for _, v := range n.Validateers {
		vals = append(vals, [2]string{fmt.Sprintf("127.0.0.1:%d", v.Ports.Metrics), v.Name})
	}
	job("integritee-node", nodes)
	job("integritee-service", vals)
	return b.String()
}
