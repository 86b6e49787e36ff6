// Command porcupine cross-checks a Conure fault-test history with porcupine
// (github.com/anishathalye/porcupine), independently of the TypeScript checker.
//
// Usage (from this directory):
//
//	go run . [-timeout 10s] [-html out.html] history.jsonl      # or the history on stdin
//
// -html writes porcupine's interactive visualization (partial linearizations per key), which is
// the quickest way to see why a history is Illegal.
//
// The history is the JSON-lines format of docs/fault-testing.md: one event per line,
// {"process", "type": "invoke"|"ok"|"fail"|"info", "f": "read"|"write"|"cas", "key", "value", "time"}.
// The semantics match test/fault/checker/history.ts:
//   - an invocation pairs with the next completion of the same process;
//   - "fail" means the operation certainly did not take effect: it is dropped;
//   - "info", or no completion at all, means indeterminate: the call may take effect at any
//     time after its invocation, or never (modelled as a return at +infinity); an
//     indeterminate read constrains nothing and is dropped;
//   - values are compared by their JSON encoding; an absent key reads as null.
//
// Output: one JSON line {"result":"Ok"|"Illegal"|"Unknown","keys":N,"ops":N}.
// Exit status: 0 Ok, 1 Illegal, 3 Unknown (timed out), 2 bad input.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

type event struct {
	Process json.RawMessage `json:"process"`
	Type    string          `json:"type"`
	F       string          `json:"f"`
	Key     json.RawMessage `json:"key"`
	Value   json.RawMessage `json:"value"`
	Time    int64           `json:"time"`
}

// input is what a call asks for; register values are canonical JSON texts.
type input struct {
	f        string
	key      string
	val      string // write: the value written
	from, to string // cas
}

// output is what a call answered; known is false for indeterminate calls.
type output struct {
	known bool
	val   string // read: the value read
}

const nullJSON = "null"

// canon re-encodes a JSON value so that equal values have equal texts.
func canon(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return nullJSON, nil
	}
	var v interface{}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func step(state, in, out interface{}) (bool, interface{}) {
	s := state.(string)
	i := in.(input)
	o := out.(output)
	switch i.f {
	case "read":
		return !o.known || o.val == s, s
	case "write":
		return true, i.val
	case "cas":
		if s == i.from {
			return true, i.to
		}
		// A cas acknowledged as successful must have found its expected value.
		return !o.known, s
	}
	return false, s
}

func readHistory(r io.Reader) ([]porcupine.Operation, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	type open struct {
		in   input
		call int64
	}
	pending := map[string]*open{}
	clientIds := map[string]int{}
	var ops []porcupine.Operation
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		proc := string(e.Process)
		if _, ok := clientIds[proc]; !ok {
			clientIds[proc] = len(clientIds)
		}
		switch e.Type {
		case "invoke":
			if pending[proc] != nil {
				return nil, fmt.Errorf("line %d: process %s invokes while an operation is open", line, proc)
			}
			key, err := canon(e.Key)
			if err != nil {
				return nil, fmt.Errorf("line %d: key: %w", line, err)
			}
			in := input{f: e.F, key: key}
			switch e.F {
			case "read":
			case "write":
				if in.val, err = canon(e.Value); err != nil {
					return nil, fmt.Errorf("line %d: value: %w", line, err)
				}
			case "cas":
				var pair []json.RawMessage
				if err := json.Unmarshal(e.Value, &pair); err != nil || len(pair) != 2 {
					return nil, fmt.Errorf("line %d: cas value must be [expected, new]", line)
				}
				if in.from, err = canon(pair[0]); err != nil {
					return nil, err
				}
				if in.to, err = canon(pair[1]); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("line %d: f %q is not a register operation", line, e.F)
			}
			pending[proc] = &open{in: in, call: e.Time}
		case "ok", "fail", "info":
			p := pending[proc]
			if p == nil {
				return nil, fmt.Errorf("line %d: process %s completes without an open operation", line, proc)
			}
			delete(pending, proc)
			switch e.Type {
			case "fail":
				continue
			case "info":
				if p.in.f != "read" {
					ops = append(ops, porcupine.Operation{ClientId: clientIds[proc], Input: p.in, Call: p.call, Output: output{}, Return: math.MaxInt64})
				}
			case "ok":
				out := output{known: true}
				if p.in.f == "read" {
					v, err := canon(e.Value)
					if err != nil {
						return nil, fmt.Errorf("line %d: value: %w", line, err)
					}
					out.val = v
				}
				ops = append(ops, porcupine.Operation{ClientId: clientIds[proc], Input: p.in, Call: p.call, Output: out, Return: e.Time})
			}
		default:
			return nil, fmt.Errorf("line %d: unknown type %q", line, e.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	procs := make([]string, 0, len(pending))
	for proc := range pending {
		procs = append(procs, proc)
	}
	sort.Strings(procs)
	for _, proc := range procs {
		p := pending[proc]
		if p.in.f != "read" {
			ops = append(ops, porcupine.Operation{ClientId: clientIds[proc], Input: p.in, Call: p.call, Output: output{}, Return: math.MaxInt64})
		}
	}
	return ops, nil
}

func main() {
	timeout := flag.Duration("timeout", 10*time.Second, "give up (result Unknown) after this long")
	html := flag.String("html", "", "also write porcupine's HTML visualization to this file")
	flag.Parse()
	var r io.Reader = os.Stdin
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer f.Close()
		r = f
	}
	ops, err := readHistory(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "porcupine harness:", err)
		os.Exit(2)
	}
	keys := map[string]bool{}
	for _, op := range ops {
		keys[op.Input.(input).key] = true
	}
	model := porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var order []string
			for _, op := range h {
				k := op.Input.(input).key
				if _, ok := byKey[k]; !ok {
					order = append(order, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, k := range order {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() interface{} { return nullJSON },
		Step: step,
		DescribeOperation: func(in, out interface{}) string {
			i, o := in.(input), out.(output)
			result := "?"
			if o.known {
				result = "ok"
				if i.f == "read" {
					result = o.val
				}
			}
			switch i.f {
			case "write":
				return fmt.Sprintf("write(%s) -> %s", i.val, result)
			case "cas":
				return fmt.Sprintf("cas(%s, %s) -> %s", i.from, i.to, result)
			}
			return fmt.Sprintf("read() -> %s", result)
		},
		DescribeState: func(state interface{}) string { return state.(string) },
	}
	res, info := porcupine.CheckOperationsVerbose(model, ops, *timeout)
	if *html != "" {
		if err := porcupine.VisualizePath(model, info, *html); err != nil {
			fmt.Fprintln(os.Stderr, "porcupine harness: visualization:", err)
		}
	}
	b, _ := json.Marshal(map[string]interface{}{"result": string(res), "keys": len(keys), "ops": len(ops)})
	fmt.Println(string(b))
	switch res {
	case porcupine.Ok:
		os.Exit(0)
	case porcupine.Illegal:
		os.Exit(1)
	default:
		os.Exit(3)
	}
}
