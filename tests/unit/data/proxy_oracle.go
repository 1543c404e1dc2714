// The oracle for tests/unit/test_proxies.py: reads JSON lines {server, proxy, no_proxy} and
// prints the proxy Go's httpproxy (what kubectl uses) picks for each, "" for none. Regenerate
// proxy_cases.jsonl with a go.mod requiring golang.org/x/net v0.57.0.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"

	"golang.org/x/net/http/httpproxy"
)

type tc struct {
	Server  string `json:"server"`
	Proxy   string `json:"proxy"`
	NoProxy string `json:"no_proxy"`
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var c tc
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			panic(err)
		}
		u, _ := url.Parse(c.Server)
		cfg := httpproxy.Config{HTTPSProxy: c.Proxy, NoProxy: c.NoProxy}
		p, err := cfg.ProxyFunc()(u)
		switch {
		case err != nil:
			fmt.Println("ERR")
		case p == nil:
			fmt.Println("")
		default:
			fmt.Println(p.String())
		}
	}
}
