package chatsvc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/ingest"
)

// errStopped answers operations submitted after the writer stopped.
var errStopped = errors.New("chat service is stopping")

// op is one state change. fn runs inside the batch transaction; it must
// do its checks before its writes and return a *frameError for a refusal
// (the batch goes on) or any other error for a database failure (the batch
// is retried one operation per transaction to isolate it). done runs on
// the fanout goroutine after the commit, with fn's error.
type op struct {
	fn   func(t *wtx) error
	done func(err error)
	// conv is the conversation fn writes, when known beforehand: a node
	// sharing its store with others locks and reads it at the start of
	// the batch instead of trusting its cache (see exec).
	conv string
	// deferrals counts the batches that left it for the next one because
	// another node held its conversation (see busyOps).
	deferrals int
	// kind labels it in parley_chat_deferred_ops_total: opMessage, opRead
	// or "" (anything else).
	kind string
}

// Kinds of operations, as parley_chat_deferred_ops_total labels them.
const (
	opMessage = "message"
	opRead    = "read"
	opOther   = "other"
)

// writer owns conversation state: every change goes through its single
// goroutine, which commits many operations in one transaction (group
// commit), then hands their effects to the fanout goroutine.
type writer struct {
	s     *Service
	store ChatStore
	ops   chan *op
	kick  chan struct{}
	fan   chan []func()
	ready chan struct{}

	convs       map[string]*convState
	visitorConv map[string]string // visitor → newest conversation
	visitors    map[string]visitorState
	queue       []string
	queueDirty  bool
	lastPos     map[string]int
	rrLast      string
	load        map[string]int // agent → open conversations assigned
	// resenders are authors whose sends look their client id up before
	// writing (until the time given); checkAll makes every send do so.
	resenders map[string]time.Time
	checkAll  bool
	// lockFirst lists the conversations a redone batch locks and reads
	// before its operations; touched, those the last attempt staged.
	lockFirst, touched []string
	redoing            bool
	hints              []string // hinted's buffer
	// carry holds the operations a batch left for the next one, in order:
	// the next batch starts with them.
	carry []*op
	// stale receives conversations other nodes changed: the writer drops
	// them from its cache before its next batch.
	stale     chan string
	forgetAll atomic.Bool
	// lingerPays is how often, lately, waiting for more operations before
	// a commit gained some, or a batch formed on its own (fill): a moving
	// average between 0 and 1.
	lingerPays float64
}

// wtx is one operation's view inside the batch transaction.
type wtx struct {
	w       *writer
	ctx     context.Context
	tx      ChatTx
	now     time.Time
	convs   map[string]*convState // staged by this op
	vis     map[string]visitorState
	effects []func()
	events  int
	queued  bool
	// batch-level staging shared by the ops of one transaction
	batch *batchState
}

type batchState struct {
	convs   map[string]*convState
	vis     map[string]visitorState
	dirty   map[string]bool
	effects []func()
	events  int
	queued  bool
	// ran and deferred split the batch's operations when some wait for
	// the next batch (both nil when none do).
	ran, deferred []*op
}

func newBatchState() *batchState {
	return &batchState{convs: map[string]*convState{}, vis: map[string]visitorState{}, dirty: map[string]bool{}}
}

func newWriter(s *Service) *writer {
	return &writer{
		s: s, store: s.store,
		ops:         make(chan *op, 8192),
		kick:        make(chan struct{}, 1),
		fan:         make(chan []func(), 1024),
		ready:       make(chan struct{}),
		convs:       map[string]*convState{},
		visitorConv: map[string]string{},
		visitors:    map[string]visitorState{},
		lastPos:     map[string]int{},
		load:        map[string]int{},
		resenders:   map[string]time.Time{},
		stale:       make(chan string, 4096),
		lingerPays:  1,
	}
}

// load reads the working set: every conversation that is not resolved.
func (w *writer) loadState(ctx context.Context) error {
	open, err := w.store.OpenConversations(ctx)
	if err != nil {
		return err
	}
	for _, c := range open {
		w.convs[c.ID] = c
	}
	w.queueDirty = true
	w.rebuildQueue()
	for _, c := range w.convs {
		if c.counts() {
			w.load[c.Assignee]++
		}
	}
	w.s.hub.setLoads(w.load, nil)
	metas := make(map[string]convMeta, len(w.convs))
	for id, c := range w.convs {
		metas[id] = c.meta()
	}
	w.s.publishMeta(metas)
	return nil
}

// submit hands an operation to the writer; it blocks while the queue is
// full (back-pressure) and fails once the service stops.
func (w *writer) submit(ctx context.Context, o *op) {
	select {
	case w.ops <- o:
	case <-w.s.stopped:
		if o.done != nil {
			o.done(errStopped)
		}
	case <-ctx.Done():
		if o.done != nil {
			o.done(ctx.Err())
		}
	}
}

// do runs fn through the writer and waits for its commit.
func (w *writer) do(ctx context.Context, fn func(t *wtx) error) error {
	return w.doOn(ctx, "", fn)
}

// doOn is do for an operation on conversation convID, named beforehand so
// that a node sharing its store locks it first (op.conv).
func (w *writer) doOn(ctx context.Context, convID string, fn func(t *wtx) error) error {
	ch := make(chan error, 1)
	w.submit(ctx, &op{fn: fn, conv: convID, done: func(err error) { ch <- err }})
	select {
	case err := <-ch:
		return err
	case <-w.s.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writer) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run is the writer goroutine. It returns when ctx ends, after the batch in hand.
func (w *writer) run(ctx context.Context) {
	close(w.ready)
	batch := make([]*op, 0, w.s.cfg.MaxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var lastBatch time.Time
	for {
		if len(w.carry) > 0 {
			if ctx.Err() != nil {
				return
			}
			batch = append(batch[:0], w.carry...)
			w.carry = w.carry[:0]
		} else {
			select {
			case <-ctx.Done():
				return
			case o := <-w.ops:
				batch = append(batch[:0], o)
			case <-w.kick:
				w.dispatch(ctx)
				continue
			}
		}
		w.dropStale()
		batch = w.fill(ctx, batch, linger, lastBatch)
		lastBatch = time.Now()
		w.runBatch(ctx, batch)
		w.dispatch(ctx)
	}
}

// lingerBelow is the batch size under which the writer lingers.
const lingerBelow = 8

// fill adds what is queued to batch, up to MaxBatch. When that leaves a
// small batch while several clients are sending (the previous batch began
// within ten lingers, and the last linger or batch showed concurrent
// senders), it waits up to CommitLinger for more: one commit then carries
// several operations instead of one each, which at 1,000 msg/s halves the
// writer's commits and saves about a tenth of the server's CPU, for about
// a millisecond more at the median. A lone operation on a quiet node is not
// held, and when lingers keep gaining nothing (one client sending in
// sequence, waiting for each ack) the writer stops lingering until batches
// form on their own again.
func (w *writer) fill(ctx context.Context, batch []*op, linger *time.Timer, lastBatch time.Time) []*op {
	limit := w.s.cfg.MaxBatch
queued:
	for len(batch) < limit {
		select {
		case o := <-w.ops:
			batch = append(batch, o)
		default:
			break queued
		}
	}
	if len(batch) > 1 {
		w.lingerPays = w.lingerPays*0.7 + 0.3
	}
	wait := w.s.cfg.CommitLinger
	if wait <= 0 {
		return batch
	}
	if time.Since(lastBatch) > 10*wait {
		w.lingerPays = 1 // traffic starts afresh: expect company again
		return batch
	}
	if w.lingerPays < 0.2 || len(batch) >= lingerBelow {
		return batch
	}
	before := len(batch)
	defer func() {
		w.lingerPays *= 0.7
		if len(batch) > before {
			w.lingerPays += 0.3
		}
	}()
	linger.Reset(wait)
	defer linger.Stop()
	for len(batch) < limit {
		select {
		case o := <-w.ops:
			batch = append(batch, o)
		case <-linger.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// forget tells the writer that another node changed a conversation; it
// never blocks (a full queue drops the whole cache instead).
func (w *writer) forget(convID string) {
	select {
	case w.stale <- convID:
	default:
		w.forgetAll.Store(true)
	}
}

// dropStale removes what other nodes changed from the cache.
func (w *writer) dropStale() {
	if w.forgetAll.Swap(false) {
		w.dropCache("")
	}
	for {
		select {
		case id := <-w.stale:
			w.dropCache(id)
		default:
			return
		}
	}
}

// dropCache forgets a cached conversation ("" forgets every one): the
// next operation on it reads the stored row.
func (w *writer) dropCache(convID string) {
	if convID == "" {
		clear(w.convs)
		clear(w.visitorConv)
		clear(w.visitors)
		return
	}
	if c, ok := w.convs[convID]; ok {
		delete(w.convs, convID)
		if w.visitorConv[c.VisitorID] == convID {
			delete(w.visitorConv, c.VisitorID)
		}
	}
}

// maxConflictRedos bounds how often a batch is redone after losing races.
const maxConflictRedos = 5

// runBatch commits ops in one transaction, or when that fails, one by one.
func (w *writer) runBatch(ctx context.Context, ops []*op) {
	w.runBatchTry(ctx, ops, 0)
}

func (w *writer) runBatchTry(ctx context.Context, ops []*op, redo int) {
	start := time.Now()
	errs, bs, err := w.exec(ctx, ops)
	var conflict *conflictError
	if errors.As(err, &conflict) && redo < maxConflictRedos {
		// Another node wrote a conversation since it was cached. The first
		// redo reads that one afresh and stays optimistic (the usual race,
		// an answer written on one node just as a message arrived on the
		// other). Losing again means both nodes are busy with the same
		// conversations: later redos read afresh and lock, from the start
		// and in id order, the conversations conflicted on and every one
		// the batch touched, and lock each other one they read, so the
		// other node waits for them instead of making them lose again.
		w.lockFirst = append(w.lockFirst, conflict.conversationID)
		if redo == 0 {
			w.dropCache(conflict.conversationID)
			w.s.metrics.conflictRedos.Inc()
			w.runBatchTry(ctx, ops, redo+1)
			return
		}
		w.lockFirst = append(w.lockFirst, w.touched...)
		slices.Sort(w.lockFirst)
		w.lockFirst = slices.Compact(w.lockFirst)
		w.s.metrics.conflictRedos.Inc()
		w.redoing = true
		w.runBatchTry(ctx, ops, redo+1)
		return
	}
	w.lockFirst, w.redoing = w.lockFirst[:0], false
	var resend *resendError
	if errors.As(err, &resend) && !w.checkAll {
		// A client id came back (a resend after a reconnect): the unique
		// index refused it. Redo the batch with every client id looked up
		// first, and keep looking the author's up for a while.
		w.noteResender(resend.author)
		w.s.metrics.resendRedos.Inc()
		w.checkAll = true
		w.runBatch(ctx, ops)
		w.checkAll = false
		return
	}
	if err != nil && len(ops) > 1 {
		w.s.log.Warn("group commit failed; retrying operations one by one", "ops", len(ops), "err", err)
		for _, o := range ops {
			w.runBatch(ctx, []*op{o})
		}
		return
	}
	if err != nil {
		errs = []error{err}
		bs = nil
		w.s.writes.failed(time.Now(), err) // /readyz reports it (health.go)
	} else {
		w.s.writes.ok(time.Now())
	}
	if bs != nil && len(bs.deferred) > 0 {
		ops = bs.ran
		for _, o := range bs.deferred {
			o.deferrals++
			kind := o.kind
			if kind == "" {
				kind = opOther
			}
			w.s.metrics.deferredOps.WithLabelValues(kind).Inc()
		}
		w.carry = append(w.carry, bs.deferred...)
	}
	w.s.metrics.commitBatch.Observe(float64(len(ops)))
	w.s.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	var effects, later []func()
	if bs != nil {
		later = w.apply(bs)
		effects = bs.effects
		if bs.events > 0 {
			w.s.relayWake()
		}
	}
	for i, o := range ops {
		if o.done != nil {
			done, e := o.done, errs[i]
			effects = append(effects, func() { done(e) })
		}
	}
	// Queue positions go out after the acks they may follow from.
	effects = append(effects, later...)
	if len(effects) > 0 {
		w.fan <- effects
	}
}

// hinted returns, sorted and once each, the conversations ops say they write.
func (w *writer) hinted(ops []*op) []string {
	w.hints = w.hints[:0]
	for _, o := range ops {
		if o.conv != "" {
			w.hints = append(w.hints, o.conv)
		}
	}
	slices.Sort(w.hints)
	w.hints = slices.Compact(w.hints)
	return w.hints
}

// maxDeferrals is how many batches may leave an operation for the next
// because its conversation is busy on another node; then one waits for it.
const maxDeferrals = 3

// busyConversations returns the hinted ids that were not locked: another
// transaction holds them (or they do not exist, which the operation finds
// out once it runs).
func busyConversations(hinted []string, locked []*convState) map[string]bool {
	got := make(map[string]bool, len(locked))
	for _, c := range locked {
		got[c.ID] = true
	}
	var busy map[string]bool
	for _, id := range hinted {
		if !got[id] {
			if busy == nil {
				busy = map[string]bool{}
			}
			busy[id] = true
		}
	}
	return busy
}

// busyOps splits ops into those the batch runs and those left for the next
// batch: the operations on a busy conversation (until they have waited
// maxDeferrals batches) and, to keep the order operations arrived in,
// every operation after one of those that names no conversation.
func busyOps(ops []*op, busy map[string]bool) (run, later []*op) {
	for _, o := range ops {
		if o.conv == "" && len(later) > 0 || busy[o.conv] && o.deferrals < maxDeferrals {
			later = append(later, o)
			continue
		}
		run = append(run, o)
	}
	return run, later
}

// lockNamed locks and reads, at the start of a batch on a node that shares
// its store, the conversations ops name, so that the batch cannot lose a
// race on them, and returns the operations the batch runs. Another node may
// have written them since they were cached. Those another node's
// transaction holds right now wait for the next batch instead of holding
// this one up: waiting for them while holding the others made the two
// nodes' batches take turns, each starting only when the other committed.
// The batch waits, in id order and holding nothing else, only for the
// conversations of operations already left behind maxDeferrals times, or
// when it has nothing else to do.
func (w *writer) lockNamed(ctx context.Context, tx ChatTx, ops []*op, bs *batchState) ([]*op, error) {
	hints := w.hinted(ops)
	if len(hints) == 0 {
		return ops, nil
	}
	lock := func(ids []string, wait bool) ([]*convState, error) {
		lockFn := tx.TryLockConversations
		if wait {
			lockFn = tx.LockConversations
		}
		fresh, err := lockFn(ctx, ids)
		for _, c := range fresh {
			bs.convs[c.ID] = c // staged unchanged: the batch reads them, apply caches them
		}
		return fresh, err
	}
	overdue := map[string]bool{}
	for _, o := range ops {
		if o.conv != "" && o.deferrals >= maxDeferrals {
			overdue[o.conv] = true
		}
	}
	var waitFor, try []string
	for _, id := range hints {
		if overdue[id] {
			waitFor = append(waitFor, id)
		} else {
			try = append(try, id)
		}
	}
	if len(waitFor) > 0 {
		if _, err := lock(waitFor, true); err != nil {
			return nil, err
		}
	}
	if len(try) == 0 {
		return ops, nil
	}
	fresh, err := lock(try, false)
	if err != nil {
		return nil, err
	}
	busy := busyConversations(try, fresh)
	if len(busy) == 0 {
		return ops, nil
	}
	run, later := busyOps(ops, busy)
	if len(run) == 0 {
		// Nothing else to do (and so nothing held): wait for them.
		if _, err := lock(slices.Sorted(maps.Keys(busy)), true); err != nil {
			return nil, err
		}
		return ops, nil
	}
	bs.ran, bs.deferred = run, later
	return run, nil
}

// exec runs ops in one transaction and returns each op's refusal, the
// staged state to apply, or the transaction's failure.
func (w *writer) exec(ctx context.Context, ops []*op) ([]error, *batchState, error) {
	work := context.WithoutCancel(ctx)
	tx, err := w.store.Begin(work)
	if err != nil {
		return nil, nil, err
	}
	bs := newBatchState()
	if !w.redoing && w.s.cluster.enabled {
		if ops, err = w.lockNamed(work, tx, ops, bs); err != nil {
			tx.Rollback(work)
			return nil, nil, err
		}
	}
	if w.redoing && len(w.lockFirst) > 0 {
		fresh, err := tx.LockConversations(work, w.lockFirst)
		if err != nil {
			tx.Rollback(work)
			return nil, nil, err
		}
		// Staged unchanged: the batch reads them, apply caches them.
		for _, c := range fresh {
			bs.convs[c.ID] = c
		}
	}
	if w.s.cluster.enabled { // only nodes that share a store lose races
		defer func() {
			w.touched = w.touched[:0]
			for id := range bs.convs {
				w.touched = append(w.touched, id)
			}
		}()
	}
	errs := make([]error, len(ops))
	// Each op stages into these maps; they are merged into bs after it and
	// cleared for the next (effects never read them).
	convs, vis := map[string]*convState{}, map[string]visitorState{}
	for i, o := range ops {
		clear(convs)
		clear(vis)
		t := &wtx{w: w, ctx: work, tx: tx, now: time.Now(), convs: convs, vis: vis, batch: bs}
		err := o.fn(t)
		var fe *frameError
		if err != nil && !errors.As(err, &fe) {
			tx.Rollback(work)
			return nil, nil, err
		}
		errs[i] = err
		if err != nil {
			continue // refused before writing anything
		}
		for id, c := range t.convs {
			bs.convs[id] = c
			bs.dirty[id] = true
		}
		for id, v := range t.vis {
			bs.vis[id] = v
		}
		bs.effects = append(bs.effects, t.effects...)
		bs.events += t.events
		bs.queued = bs.queued || t.queued
	}
	for id := range bs.dirty {
		c := bs.convs[id]
		// w.convs holds what is committed: the update writes only the
		// columns that may have changed since.
		if err := tx.UpdateConversation(work, c, changeFrom(w.convs[id], c)); err != nil {
			tx.Rollback(work)
			return nil, nil, err
		}
	}
	if err := tx.Commit(work); err != nil {
		return nil, nil, fmt.Errorf("commit %d operations: %w", len(ops), err)
	}
	return errs, bs, nil
}

// apply makes a committed batch's state the writer's state and returns
// the queue-position effects it caused.
func (w *writer) apply(bs *batchState) []func() {
	metas := make(map[string]convMeta, len(bs.convs))
	// loadBefore holds each touched agent's load before the batch: only a
	// load that ends different is news. (A message in an assigned
	// conversation takes it off its agent's load and puts it back; telling
	// every agent on the site about that sent each of them a presence frame
	// per message, 13 of every 16 frames at 1,000 msg/s with 12 agents.)
	loadBefore := map[string]int{}
	touch := func(agent string) {
		if _, ok := loadBefore[agent]; !ok {
			loadBefore[agent] = w.load[agent]
		}
	}
	for id, c := range bs.convs {
		old, had := w.convs[id]
		if had && old.counts() {
			touch(old.Assignee)
			w.load[old.Assignee]--
		}
		if c.counts() {
			touch(c.Assignee)
			w.load[c.Assignee]++
		}
		if had && (old.Routing != c.Routing || old.Status != c.Status || old.QueuedAt != c.QueuedAt || old.TeamID != c.TeamID) {
			w.queueDirty = true
		}
		if !had && c.Routing == RoutingQueued {
			w.queueDirty = true
		}
		w.convs[id] = c
		if cur, ok := w.visitorConv[c.VisitorID]; !ok || cur == id || w.newer(c, cur) {
			w.visitorConv[c.VisitorID] = id
		}
		metas[id] = c.meta()
	}
	for id, v := range bs.vis {
		w.visitors[id] = v
	}
	if bs.queued {
		w.queueDirty = true
	}
	w.s.publishMeta(metas)
	changedLoad := map[string]bool{}
	for a, before := range loadBefore {
		if w.load[a] != before {
			changedLoad[a] = true
		}
		if w.load[a] == 0 {
			delete(w.load, a)
		}
	}
	if len(changedLoad) > 0 {
		bs.effects = append(bs.effects, w.s.hub.setLoads(w.load, changedLoad)...)
	}
	// Resolved conversations leave the working set once it grows large.
	for id, c := range bs.convs {
		if c.Status == StatusResolved && len(w.convs) > 50000 {
			delete(w.convs, id)
		}
	}
	if w.queueDirty {
		return w.rebuildQueue()
	}
	return nil
}

func (w *writer) newer(c *convState, otherID string) bool {
	o, ok := w.convs[otherID]
	return !ok || c.CreatedAt >= o.CreatedAt
}

// rebuildQueue orders the waiting conversations and returns effects that
// tell visitors whose position changed.
func (w *writer) rebuildQueue() []func() {
	w.queueDirty = false
	if w.s.cluster.enabled {
		// The leader numbers the queue across nodes (cluster.go); this
		// node's cache holds only part of it.
		w.s.cluster.route()
		return nil
	}
	w.queue = w.queue[:0]
	for id, c := range w.convs {
		if c.Routing == RoutingQueued && c.Status != StatusResolved {
			w.queue = append(w.queue, id)
		}
	}
	sort.Slice(w.queue, func(i, j int) bool {
		a, b := w.convs[w.queue[i]], w.convs[w.queue[j]]
		if a.QueuedAt != b.QueuedAt {
			return a.QueuedAt < b.QueuedAt
		}
		return a.ID < b.ID
	})
	// Positions count within a team's line (the whole queue for no team).
	pos := make(map[string]int, len(w.queue))
	perTeam := map[string]int{}
	for _, id := range w.queue {
		c := w.convs[id]
		perTeam[c.TeamID]++
		pos[id] = perTeam[c.TeamID]
	}
	var effects []func()
	for id, p := range pos {
		if w.lastPos[id] != p {
			c := w.convs[id]
			conv, vis, position := id, c.VisitorID, p
			effects = append(effects, func() {
				w.s.hub.toVisitor(vis, encode(queueFrame{Type: "queue", ConversationID: conv, Position: position}), nil)
			})
		}
	}
	w.lastPos = pos
	w.s.setQueuePositions(pos)
	return effects
}

// conv returns the staged or cached conversation, loading it when needed.
// The returned copy is the op's to change; stage it with put.
func (t *wtx) conv(id string) (*convState, error) {
	if c, ok := t.convs[id]; ok {
		return c, nil
	}
	if c, ok := t.batch.convs[id]; ok {
		cp := *c
		return &cp, nil
	}
	if t.w.redoing {
		// A redone batch trusts no cached conversation and locks each one
		// it reads, so it cannot lose a race on it again.
		cs, err := t.tx.LockConversations(t.ctx, []string{id})
		if err != nil {
			return nil, err
		}
		if len(cs) == 0 {
			return nil, errf(CodeNotFound, "conversation %s not found", id)
		}
		return cs[0], nil
	}
	if c, ok := t.w.convs[id]; ok {
		cp := *c
		return &cp, nil
	}
	c, err := t.tx.Conversation(t.ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errf(CodeNotFound, "conversation %s not found", id)
	}
	return c, err
}

func (t *wtx) put(c *convState) { t.convs[c.ID] = c }

// visitor returns the staged or cached visitor, loading it when needed.
func (t *wtx) visitor(id string) (visitorState, error) {
	if v, ok := t.vis[id]; ok {
		return v, nil
	}
	if v, ok := t.batch.vis[id]; ok {
		return v, nil
	}
	if v, ok := t.w.visitors[id]; ok {
		return v, nil
	}
	v, err := t.tx.VisitorSummary(t.ctx, id)
	if err != nil {
		return visitorState{}, err
	}
	if v.SiteID == "" {
		return v, nil // unknown: not cached, a later op may create it
	}
	t.vis[id] = v
	return v, nil
}

// currentConv returns the visitor's newest conversation id, if any.
func (t *wtx) currentConv(visitorID string) (string, error) {
	var newest *convState
	for _, m := range []map[string]*convState{t.convs, t.batch.convs} {
		for _, c := range m {
			if c.VisitorID == visitorID && (newest == nil || c.CreatedAt > newest.CreatedAt) {
				newest = c
			}
		}
	}
	if newest != nil {
		return newest.ID, nil
	}
	if id, ok := t.w.visitorConv[visitorID]; ok {
		return id, nil
	}
	return t.tx.NewestConversationOf(t.ctx, visitorID)
}

// emit writes an event to the outbox in the batch transaction.
func (t *wtx) emit(typ ingest.Type, c *convState, actor ingest.Actor, payload any) (ingest.Event, error) {
	e, err := ingest.New(typ, c.SiteID, c.ID, actor, t.now, payload)
	if err != nil {
		return ingest.Event{}, fmt.Errorf("build %s event: %w", typ, err)
	}
	return e, t.emitEvent(e)
}

// emitEvent writes a built event to the outbox in the batch transaction.
func (t *wtx) emitEvent(e ingest.Event) error {
	rec, err := ingest.NewOutboxRecord(e)
	if err != nil {
		return err
	}
	if err := t.tx.AppendOutbox(t.ctx, rec); err != nil {
		return err
	}
	t.events++
	return nil
}

// after queues an effect to run after the commit, in op order.
func (t *wtx) after(f func()) { t.effects = append(t.effects, f) }

// fanout runs committed effects in order; it owns no state of its own.
func (w *writer) fanout(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			// Deliver what was committed before stopping.
			for {
				select {
				case effects := <-w.fan:
					for _, f := range effects {
						f()
					}
				default:
					return
				}
			}
		case effects := <-w.fan:
			for _, f := range effects {
				f()
			}
		}
	}
}

// resendTTL is how long an author who resent a client id keeps having
// their client ids looked up before the insert.
const resendTTL = 10 * time.Minute

// maxResenders bounds the resenders set; past it the expired entries go,
// and when none has expired the set starts again (forgotten authors only
// cost one more batch redo).
const maxResenders = 10000

// resendError is a message insert that hit the unique index on
// (author_id, client_id): the author resent a stored message.
type resendError struct{ author, clientID string }

func (e *resendError) Error() string {
	return fmt.Sprintf("client id %s of %s is already stored", e.clientID, e.author)
}

// checksClientIDs reports whether author's sends must look their client id up first.
func (w *writer) checksClientIDs(author string) bool {
	if w.checkAll {
		return true
	}
	until, ok := w.resenders[author]
	if !ok {
		return false
	}
	if time.Now().Before(until) {
		return true
	}
	delete(w.resenders, author)
	return false
}

func (w *writer) noteResender(author string) {
	now := time.Now()
	if len(w.resenders) >= maxResenders {
		for a, until := range w.resenders {
			if !now.Before(until) {
				delete(w.resenders, a)
			}
		}
		if len(w.resenders) >= maxResenders {
			clear(w.resenders)
		}
	}
	w.resenders[author] = now.Add(resendTTL)
}
