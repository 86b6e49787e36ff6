// Command clientv3-errors drives Go clientv3 (the real client, v3.5) against an etcd endpoint and
// prints, per scenario, whether clientv3's rpctypes maps the server's error back to the typed
// error etcd itself returns: one JSON line {"name","want","match","code","desc"} each.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(os.Args[1], ","), DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	put, err := cli.Put(ctx, "errors/k", "v")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := cli.Put(ctx, "errors/k", "v2"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := cli.Compact(ctx, put.Header.Revision+1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ops := make([]clientv3.Op, 129)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprintf("errors/op%d", i), "v")
	}
	report := func(name string, want error, err error) {
		line, _ := json.Marshal(map[string]any{"name": name, "want": want.Error(), "match": rpctypes.Error(err) == want, "desc": rpctypes.ErrorDesc(err)})
		fmt.Println(string(line))
	}
	_, err = cli.Get(ctx, "errors/k", clientv3.WithRev(put.Header.Revision))
	report("compacted", rpctypes.ErrCompacted, err)
	_, err = cli.Get(ctx, "errors/k", clientv3.WithRev(put.Header.Revision+1000))
	report("future revision", rpctypes.ErrFutureRev, err)
	_, err = cli.Revoke(ctx, 0x1234567)
	report("lease not found", rpctypes.ErrLeaseNotFound, err)
	_, err = cli.Grant(ctx, 9_000_000_001)
	report("lease TTL too large", rpctypes.ErrLeaseTTLTooLarge, err)
	_, err = cli.Put(ctx, "errors/big", strings.Repeat("x", 1600*1024))
	report("request too large", rpctypes.ErrRequestTooLarge, err)
	_, err = cli.Txn(ctx).Then(ops...).Commit()
	report("too many ops", rpctypes.ErrTooManyOps, err)
	_, err = cli.Txn(ctx).Then(clientv3.OpPut("errors/d", "1"), clientv3.OpPut("errors/d", "2")).Commit()
	report("duplicate key", rpctypes.ErrDuplicateKey, err)
	_, err = cli.Put(ctx, "", "v")
	report("empty key", rpctypes.ErrEmptyKey, err)
	_, err = cli.MemberRemove(ctx, 0x1234567)
	report("member not found", rpctypes.ErrMemberNotFound, err)
	_, err = cli.MemberPromote(ctx, uint64(put.Header.MemberId))
	report("member not learner", rpctypes.ErrMemberNotLearner, err)
}
