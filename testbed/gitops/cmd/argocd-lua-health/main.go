// Command argocd-lua-health runs an Argo CD resource health check (health.lua) over every case of
// its health_test.yaml, the layout of Argo CD's own resource_customizations/<group>/<Kind>/, and
// fails with a diff when a case's status or message differs.
//
// The script runs as Argo CD runs a health check from argocd-cm without useOpenLibs: a fresh
// gopher-lua VM per object, the object as the global `obj` (numbers as Lua numbers, as Argo CD
// decodes them from the cluster), one second to finish, and a returned table read as
// {status, message}. Only the base and table libraries are opened, which is stricter than Argo CD
// (it also opens package and a safe os): a script that passes here needs nothing more.
//
//	argocd-lua-health DIR    DIR holds health.lua, health_test.yaml and the inputs it names
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The health statuses Argo CD accepts from a script; any other is reported as Unknown.
var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true,
	"Healthy": true, "Degraded": true, "Missing": true,
}

const invalidHealthStatus = "Lua returned an invalid health status"

// Argo CD gives a health script this long.
const scriptTimeout = time.Second

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

type testCase struct {
	InputPath    string       `json:"inputPath"`
	HealthStatus healthStatus `json:"healthStatus"`
}

type testFile struct {
	Tests []testCase `json:"tests"`
}

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua-health DIR  (DIR holds health.lua and health_test.yaml)")
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	failed, total, err := run(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua-health:", err)
		os.Exit(2)
	}
	if failed > 0 {
		fmt.Printf("argocd-lua-health: %d of %d cases differ from health_test.yaml\n", failed, total)
		os.Exit(1)
	}
	fmt.Printf("argocd-lua-health: all %d cases agree with health_test.yaml\n", total)
}

// run checks every case and prints one line per case, and a diff for each that differs.
func run(dir string) (failed, total int, err error) {
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return 0, 0, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		return 0, 0, err
	}
	var tests testFile
	if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
		return 0, 0, fmt.Errorf("health_test.yaml: %w", err)
	}
	if len(tests.Tests) == 0 {
		return 0, 0, errors.New("health_test.yaml lists no tests")
	}
	for _, tc := range tests.Tests {
		obj, err := readObject(filepath.Join(dir, tc.InputPath))
		if err != nil {
			return failed, total, fmt.Errorf("%s: %w", tc.InputPath, err)
		}
		total++
		got, err := evaluate(string(script), obj)
		if err != nil {
			failed++
			fmt.Printf("FAIL %s\n  want: %s %q\n  got:  error: %v\n", tc.InputPath, tc.HealthStatus.Status, tc.HealthStatus.Message, err)
			continue
		}
		if got != tc.HealthStatus {
			failed++
			fmt.Printf("FAIL %s\n  want: %s %q\n  got:  %s %q\n", tc.InputPath, tc.HealthStatus.Status, tc.HealthStatus.Message, got.Status, got.Message)
			continue
		}
		fmt.Printf("ok   %s: %s %q\n", tc.InputPath, got.Status, got.Message)
	}
	return failed, total, nil
}

// readObject reads one YAML or JSON object as Argo CD holds it: unstructured, integers as int64.
func readObject(path string) (map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, err
	}
	return u.Object, nil
}

// evaluate runs the script over obj in a VM with only the base and table libraries.
func evaluate(script string, obj map[string]any) (healthStatus, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return healthStatus{}, fmt.Errorf("opening %s: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return healthStatus{}, err
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return healthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", L.Get(-1).Type())
	}
	status, err := stringField(ret, "status")
	if err != nil {
		return healthStatus{}, err
	}
	message, err := stringField(ret, "message")
	if err != nil {
		return healthStatus{}, err
	}
	if !validStatuses[status] {
		return healthStatus{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	return healthStatus{Status: status, Message: message}, nil
}

// stringField reads a field Argo CD unmarshals into a Go string: absent is "", a non-string fails.
func stringField(t *lua.LTable, name string) (string, error) {
	switch v := t.RawGetString(name).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", fmt.Errorf("the returned %s is a Lua %s, not a string", name, v.Type())
	}
}

// toLua converts a decoded object into Lua values: maps to tables, lists to sequences, every
// number to a Lua number.
func toLua(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetString(key, toLua(L, item))
		}
		return t
	default:
		return lua.LNil
	}
}
