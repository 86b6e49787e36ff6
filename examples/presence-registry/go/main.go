// The IM chat guide's Go client snippet against the presence registry: clientv3.New with three
// endpoints and a 5 s dial timeout, then a device registered under a 90 s lease, looked up and
// unregistered. ETCD_ENDPOINTS=host:port,host:port,host:port; prints PRESENCE OK on success.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	endpoints := strings.Split(os.Getenv("ETCD_ENDPOINTS"), ",")
	if len(endpoints) != 3 {
		fmt.Fprintln(os.Stderr, "ETCD_ENDPOINTS must list three endpoints")
		os.Exit(2)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoints[0], endpoints[1], endpoints[2]},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		fail("connect", err)
	}
	defer cli.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lease, err := cli.Grant(ctx, 90)
	if err != nil {
		fail("grant", err)
	}
	key := "/registry/users/go-user/go-device"
	if _, err := cli.Put(ctx, key, "gateway-go", clientv3.WithLease(lease.ID)); err != nil {
		fail("put", err)
	}
	if _, err := cli.KeepAliveOnce(ctx, lease.ID); err != nil {
		fail("keepalive", err)
	}
	resp, err := cli.Get(ctx, "/registry/users/go-user/", clientv3.WithPrefix())
	if err != nil {
		fail("get", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "gateway-go" || resp.Kvs[0].Lease != int64(lease.ID) {
		fail("lookup", fmt.Errorf("unexpected answer %v", resp.Kvs))
	}
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		fail("revoke", err)
	}
	resp, err = cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 0 {
		fail("after revoke", fmt.Errorf("key still present or error %v", err))
	}
	fmt.Println("PRESENCE OK")
}

func fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
	os.Exit(1)
}
