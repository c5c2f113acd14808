package gateway

import (
	"reflect"
	"sync"
)

// wipingPool is the websocket write buffers' pool. A buffer comes back holding the frame it
// carried, model output, so Put clears it first. gorilla/websocket puts a value of an
// unexported struct type with one []byte field (writePoolData); reflect reaches the bytes.
type wipingPool struct{ p sync.Pool }

func (w *wipingPool) Get() any { return w.p.Get() }

func (w *wipingPool) Put(v any) {
	if b, ok := poolBytes(v); ok {
		clear(b[:cap(b)])
	}
	w.p.Put(v)
}

// poolBytes returns the byte slice v holds: v itself, or the only field of a struct.
func poolBytes(v any) ([]byte, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() == reflect.Struct && rv.NumField() == 1 {
		rv = rv.Field(0)
	}
	if rv.Kind() != reflect.Slice || rv.Type().Elem().Kind() != reflect.Uint8 {
		return nil, false
	}
	return rv.Bytes(), true
}
