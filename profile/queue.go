// This file holds Queue, the hand-off between recorders' event loops and a Writer: producers never block,
// one goroutine writes.

package profile

import (
	"sync"
	"sync/atomic"
)

// Queue buffers events between many producers (gnet event loops, tap workers) and one Writer. TryPut never
// blocks: when capacity events are already waiting, the event is dropped and counted, because stalling an
// event loop would distort the very latencies being recorded. While the Writer cannot write (a full disk,
// WriterOptions.Retry), TryPut drops events too, and the Writer's own timer retries.
//
// Memory is bounded by 2×capacity events: capacity waiting plus one batch being written.
type Queue struct {
	w *Writer

	mu       sync.Mutex
	buf      []Event // waiting events, len ≤ capacity
	closed   bool
	capacity int

	wake  chan struct{} // holds a token when buf became non-empty or the queue closed
	spare []Event       // owned by the writing goroutine
	done  chan struct{}

	dropped atomic.Uint64 // refused by TryPut; the Writer counts what it refuses or loses

	closeOnce sync.Once
	closeErr  error
}

// NewQueue starts the goroutine that writes queued events to w. capacity is the number of events that may
// wait (minimum 1). Close the Queue, not w: Queue.Close drains and closes the writer.
func NewQueue(w *Writer, capacity int) *Queue {
	capacity = max(capacity, 1)
	q := &Queue{
		w:        w,
		buf:      make([]Event, 0, capacity),
		spare:    make([]Event, 0, capacity),
		capacity: capacity,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	go q.run()
	return q
}

// TryPut copies ev into the queue and reports whether it was accepted. It never blocks and never allocates;
// it is safe for concurrent use. A full or closed queue, or one whose Writer is failing, drops the event and
// counts it in Dropped.
func (q *Queue) TryPut(ev *Event) bool {
	if q.w.Failing() {
		q.w.dropped.Add(1) // the Writer's count, so its resume message tells every event the failure cost
		return false
	}
	q.mu.Lock()
	if q.closed || len(q.buf) >= q.capacity {
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	q.buf = append(q.buf, *ev)
	first := len(q.buf) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// Dropped returns the number of events TryPut refused (queue full or closed, writer failing) plus those the
// Writer refused or could not write.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() + q.w.Dropped() }

// Written returns the events the Writer holds (Writer.Events): after Close, exactly the events in the file.
func (q *Queue) Written() uint64 { return uint64(q.w.Events()) }

// Len returns the number of events waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf)
}

func (q *Queue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.buf) == 0 && !q.closed {
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		batch := q.buf
		q.buf = q.spare[:0]
		closed := q.closed
		q.mu.Unlock()

		for i := range batch {
			// An event the Writer refuses is counted in its Dropped; a failure that lasts is reported by Close.
			_ = q.w.Write(&batch[i])
		}
		q.spare = batch[:0]
		if closed && len(batch) == 0 {
			return
		}
	}
}

// Close stops accepting events, writes every queued event, and closes the Writer. It returns the Writer's
// Close error (a failure that lasted until the end). Close is idempotent.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
		<-q.done
		q.closeErr = q.w.Close()
	})
	return q.closeErr
}

// Abort stops accepting events, discards the queued ones and aborts the Writer (Writer.Abort removes the file
// it created): for a recorder whose start failed, so that no empty profile is left behind. Close after Abort
// returns the abort error.
func (q *Queue) Abort() {
	q.closeOnce.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.buf = q.buf[:0]
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
		<-q.done
		q.w.Abort()
		q.closeErr = q.w.Close()
	})
}
