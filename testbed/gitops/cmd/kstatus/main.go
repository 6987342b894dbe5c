// Command kstatus computes the kstatus of Kubernetes objects, as Flux's health checks do
// (sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute), and prints one JSON line per object:
// {"kind", "namespace", "name", "status", "message"}.
//
//	kstatus [FILE...]    YAML (documents split by ---) or JSON, a List's items each; no FILE or
//	                     "-" reads stdin
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type line struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"-"}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	count := 0
	for _, arg := range args {
		n, err := computeAll(arg, enc)
		count += n
		if err != nil {
			out.Flush()
			fmt.Fprintf(os.Stderr, "kstatus: %s: %v\n", arg, err)
			os.Exit(1)
		}
	}
	if count == 0 {
		out.Flush()
		fmt.Fprintln(os.Stderr, "kstatus: no object in the input")
		os.Exit(1)
	}
}

// computeAll prints the status of every object in one file ("-": stdin).
func computeAll(path string, enc *json.Encoder) (int, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		r = f
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	count := 0
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return count, nil
			}
			return count, err
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		// The unstructured JSON scheme decodes integers as int64, as a client reading the API does.
		decoded, _, err := unstructured.UnstructuredJSONScheme.Decode(raw, nil, nil)
		if err != nil {
			return count, err
		}
		var objects []unstructured.Unstructured
		switch o := decoded.(type) {
		case *unstructured.Unstructured:
			objects = append(objects, *o)
		case *unstructured.UnstructuredList:
			objects = append(objects, o.Items...)
		default:
			return count, fmt.Errorf("unexpected object %T", decoded)
		}
		for i := range objects {
			u := &objects[i]
			res, err := status.Compute(u)
			if err != nil {
				return count, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
			}
			if err := enc.Encode(line{
				Kind:      u.GetKind(),
				Namespace: u.GetNamespace(),
				Name:      u.GetName(),
				Status:    res.Status.String(),
				Message:   res.Message,
			}); err != nil {
				return count, err
			}
			count++
		}
	}
}
