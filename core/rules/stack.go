package rules

import (
	"reflect"
	"sync"
	"unsafe"

	"github.com/dop251/goja"
)

// goja drops a runtime's value stack whenever a call from Go returns
// (Runtime.leave sets it to nil, to free it), so each handler call grew
// a new one from nothing, doubling from two slots: half a dozen
// allocations and copies per call, an eighth of the bytes a shipped-rules
// event allocated. A runtime here keeps one stack of its own and hands it
// to goja, empty, before each handler call (goja grows past it the usual
// way if a call needs more), and clears it afterwards so that it holds
// nothing of the call alive.
//
// goja has no API for this; stackFields finds Runtime.vm and vm.stack by
// reflection, once. TestHandlerStackIsReused fails if a goja upgrade moves
// them; without them calls run as before, on goja's own stacks.

// handlerStackSlots is the stack a runtime keeps: three times what the
// shipped rules' calls use (21 slots at most, callbacks included).
const handlerStackSlots = 64

type stackOffsets struct {
	vm    uintptr // Runtime.vm (*vm)
	stack uintptr // vm.stack ([]Value)
}

var stackFields = sync.OnceValue(func() *stackOffsets {
	vmField, ok := reflect.TypeFor[goja.Runtime]().FieldByName("vm")
	if !ok || len(vmField.Index) != 1 || vmField.Type.Kind() != reflect.Pointer || vmField.Type.Elem().Kind() != reflect.Struct {
		return nil
	}
	stackField, ok := vmField.Type.Elem().FieldByName("stack")
	if !ok || len(stackField.Index) != 1 || stackField.Type.Kind() != reflect.Slice ||
		stackField.Type.Elem() != reflect.TypeFor[goja.Value]() {
		return nil
	}
	return &stackOffsets{vm: vmField.Offset, stack: stackField.Offset}
})

// gojaStack is where rt keeps its value stack, or nil.
func gojaStack(rt *goja.Runtime) *[]goja.Value {
	f := stackFields()
	if f == nil {
		return nil
	}
	vmPtr := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(rt), f.vm))
	if vmPtr == nil {
		return nil
	}
	return (*[]goja.Value)(unsafe.Add(vmPtr, f.stack))
}

// lendStack gives goja the runtime's own stack for the next call, when
// goja has none (no call in progress).
func (m *vm) lendStack() {
	s := gojaStack(m.rt)
	if s == nil || *s != nil {
		return
	}
	if m.stack == nil {
		m.stack = make([]goja.Value, handlerStackSlots)
	}
	*s = m.stack[:0]
}

// reclaimStack drops what the call left on the runtime's stack, once goja
// let go of it (a call cut by an interrupt leaves it in place, and the
// runtime is discarded).
func (m *vm) reclaimStack() {
	if len(m.stack) == 0 {
		return
	}
	if s := gojaStack(m.rt); s != nil && cap(*s) > 0 && &(*s)[:1][0] == &m.stack[0] {
		return
	}
	// Slot by slot, writing only the slots in use: clear would write all
	// of them, each through the GC's write barrier while a collection
	// runs (most of the time, at the rate rules allocate).
	for i := range m.stack {
		if m.stack[i] != nil {
			m.stack[i] = nil
		}
	}
}
