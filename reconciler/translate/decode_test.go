package translate

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/ir"
)

// decodeIR reads an IR written as YAML with Go field names as keys. Unlike
// encoding/json it is strict (an unknown key is an error) and reads
// durations as Go duration strings ("5s"), so that test inputs stay
// readable.
func decodeIR(data []byte) (*ir.IR, error) {
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	x := &ir.IR{}
	if raw == nil {
		return x, nil
	}
	if err := decodeValue("ir", reflect.ValueOf(x).Elem(), raw); err != nil {
		return nil, err
	}
	return x, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func decodeValue(path string, v reflect.Value, data any) error {
	if data == nil {
		return nil
	}
	if v.Type() == durationType {
		s, ok := data.(string)
		if !ok {
			return fmt.Errorf("%s: want a duration string, got %T", path, data)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := decodeValue(path, p.Elem(), data); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Struct:
		m, ok := data.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a mapping, got %T", path, data)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sf, ok := v.Type().FieldByName(k)
			if !ok || !sf.IsExported() {
				return fmt.Errorf("%s: unknown field %q in %s", path, k, v.Type())
			}
			if err := decodeValue(path+"."+k, v.FieldByIndex(sf.Index), m[k]); err != nil {
				return err
			}
		}
	case reflect.Slice:
		items, ok := data.([]any)
		if !ok {
			return fmt.Errorf("%s: want a sequence, got %T", path, data)
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			if err := decodeValue(fmt.Sprintf("%s[%d]", path, i), s.Index(i), it); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.String:
		s, ok := data.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %T", path, data)
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := data.(bool)
		if !ok {
			return fmt.Errorf("%s: want a boolean, got %T", path, data)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
		f, ok := data.(float64)
		if !ok || f != math.Trunc(f) {
			return fmt.Errorf("%s: want an integer, got %v", path, data)
		}
		if v.CanUint() {
			if f < 0 || v.OverflowUint(uint64(f)) {
				return fmt.Errorf("%s: %v out of range", path, f)
			}
			v.SetUint(uint64(f))
		} else {
			if v.OverflowInt(int64(f)) {
				return fmt.Errorf("%s: %v out of range", path, f)
			}
			v.SetInt(int64(f))
		}
	default:
		return fmt.Errorf("%s: cannot decode into %s", path, v.Type())
	}
	return nil
}
