"""GroupMember: one member of the group, a sans-I/O Raft state machine in Galera's terms.

Raft (leader-ordered log, weighted-majority commit, pre-vote and check-quorum, joint
consensus for membership changes) orders the payloads. Galera's words map onto it:

- the *primary component* is the set of members attached to a leader that holds a quorum
  of the configuration; only it commits, so only it delivers;
- a *view* is a stable configuration entry of the log; each one consumes a conf_id, and a
  new leader opens its term with one, so conf_id changes whenever membership or the
  primary component changes, in the same place of every member's event stream;
- *seqno* counts payload entries only; delivery is Raft's commit, in log order.

Nothing here reads a clock, a socket or global randomness: the driver passes `now` and
carries the `Send` actions.
"""

from __future__ import annotations

import enum
import logging
import random
import uuid

from wsrep.group.codec import (
    NIL_UUID,
    Append,
    AppendResponse,
    Body,
    CodecError,
    Flow,
    Forward,
    Join,
    Leave,
    Message,
    Purged,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode,
    encode,
)
from wsrep.group.flow_control import FlowGate
from wsrep.group.local_log import LocalLog
from wsrep.group.log import Configuration, Entry, EntryKind, HardState, LogStorage
from wsrep.group.replication import Header, Replication
from wsrep.group.submissions import Outstanding, RequestOrder, Requests
from wsrep.group.types import (
    Action,
    Behind,
    Connect,
    Deliver,
    FlowControl,
    GroupConfig,
    GroupStats,
    MemberId,
    MemberInfo,
    Send,
    Submitted,
    View,
    ViewChange,
)

logger = logging.getLogger("wsrep.group")


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class GroupMember:
    """Feed it peers, bytes, submissions and ticks; drain `take_actions()` after every call.

    All times are the driver's monotonic clock in seconds. `rng_seed` must differ between
    runs of a real member (e.g. from `os.urandom`): it picks the incarnation that tells this
    run's submissions from the previous one's, election jitter and a bootstrap cluster uuid.
    Storage writes happen inside the calls; a term or vote is durable when they return, log
    entries once the storage's sync job ran, which the driver does before it carries out
    the actions taken after them (`LogStorage`). After a restart the member delivers from
    `storage.hard_state().delivered + 1`, so it hands out nothing twice.
    """

    def __init__(
        self, config: GroupConfig, storage: LogStorage, now: float, rng_seed: int = 0
    ) -> None:
        self._cfg = config
        self._me = config.member
        self._id = config.member.id
        self._storage = storage
        self._rng = random.Random(f"{rng_seed}/{self._id}/{now}")
        self._incarnation = self._rng.getrandbits(63)
        self._now = now
        self._actions: list[Action] = []
        self._stats = GroupStats()
        self._view: View | None = None

        hs = storage.hard_state()
        self._term = hs.term
        self._voted_for = hs.voted_for
        self._cluster_uuid = hs.cluster_uuid or config.cluster_uuid
        self._delivered = hs.delivered
        self._commit = hs.delivered
        self._role = Role.FOLLOWER
        self._leader: MemberId | None = None
        self._leader_contact = -1e18
        self._primary = False
        self._votes: set[MemberId] = set()
        # a clean shutdown (Galera's graceful leave): asked to be removed, then removed
        self._leaving = False
        self._left = False
        self._leave_at = now

        # peers as the transport reports them
        self._peers: dict[MemberId, MemberInfo] = {}
        self._down: set[MemberId] = set()
        self._dialed: dict[MemberId, str] = {}
        self._refused: set[tuple[MemberId, uuid.UUID]] = set()

        self._load_log()
        # Started from empty storage: new, or its storage was lost. In a previous life it may
        # have voted in the current term or acknowledged committed entries it no longer has,
        # so it neither votes nor campaigns until it has caught up with a primary leader's
        # commit (which covers every entry committed in earlier terms).
        self._amnesiac = (
            hs == HardState() and self._log.last_index == 0 and storage.base()[0] is None
        )

        # submissions: our own until ordered; the leader's record of everyone's
        self._outstanding = Outstanding()
        self._request_order = RequestOrder()
        self._proposals: list[tuple[MemberId, int, int, bytes]] = []

        # leader state
        self._replication = Replication(self._log, config)
        self._heartbeat_at = now
        self._quorum_check_at = now
        self._joins: dict[MemberId, MemberInfo] = {}
        # Raft thesis 4.2.1: a new member catches up as a non-voting follower before a
        # configuration counts its vote: (commit index to reach, when this round began)
        self._catch_up: dict[MemberId, tuple[int, float]] = {}
        self._leaves: set[MemberId] = set()  # to remove
        self._leavers: set[MemberId] = set()  # asked to leave, not told they are out yet
        self._bump_view = False

        # follower state
        self._ack: AppendResponse | None = None
        self._behind_reported: tuple[MemberId, int] | None = None

        # flow control
        self._apply_queue = 0
        self._reported_over = False
        self._flow = FlowGate(config.fc_limit, config.fc_factor)

        self._election_at = now + self._election_jitter()
        self._join_at = now
        self._resend_at = now

        if config.bootstrap:
            self._bootstrap(now)
        logger.info(
            "%s: started term=%d delivered=seqno %d log=[%d..%d] cluster=%s",
            self._id, self._term, self._delivered_seqno, self._storage.first_index(),
            self._log.last_index, self._cluster_uuid,
        )  # fmt: skip

    # ---- public API -----------------------------------------------------------------------

    @property
    def view(self) -> View | None:
        """The last view handed out (None before the first one)."""
        return self._view

    @property
    def stats(self) -> GroupStats:
        return self._stats

    @property
    def state(self) -> Role:
        return self._role

    @property
    def leader(self) -> MemberId | None:
        return self._leader

    @property
    def cluster_uuid(self) -> uuid.UUID | None:
        return self._cluster_uuid

    @property
    def delivered_seqno(self) -> int:
        """The last seqno handed out (after a restart: the one handed out before it)."""
        return self._delivered_seqno

    @property
    def flow_paused(self) -> bool:
        """Flow control holds new submissions back (Galera: FC_PAUSE in effect)."""
        return self._flow.paused

    @property
    def pending_submissions(self) -> int:
        """Submissions of this member still waiting for their seqno."""
        return len(self._outstanding)

    @property
    def has_left(self) -> bool:
        """`leave()` is done: no committed configuration holds this member any more."""
        return self._left

    def leave(self, now: float) -> None:
        """Ask to be removed from the configuration (a clean shutdown, Galera's graceful
        leave), so the others install a smaller primary view instead of suspecting a failure.

        The leader removes it like an eviction (a single-member change through a joint
        configuration). `has_left` turns True once that change committed; from then on the
        member is outside every primary component and takes part in nothing: no joins,
        no votes counted, no campaigns. The last member that can lead (not an arbitrator)
        is never removed, or nobody could lead, admit or restart the group: it is out at
        once, as is a member in no configuration. Until then the request is repeated every
        heartbeat; the driver bounds the wait (no leader: the member just goes).
        """
        self._now = now
        if self._leaving:
            return
        self._leaving = True
        cfg = self._log.config
        if cfg is None or not _can_lead_without(cfg, self._id):
            self._quit("no other member could lead the group")
            return
        logger.info(
            "%s: leaving the group (%s, term %d, delivered seqno %d)", self._id,
            self._role.value, self._term, self._delivered_seqno,
        )  # fmt: skip
        self._ask_to_leave(now)

    def peer_up(self, peer: MemberInfo, now: float) -> None:
        """The transport connected to and authenticated `peer`."""
        self._now = now
        if peer.id == self._id:
            return
        self._peers[peer.id] = peer
        self._down.discard(peer.id)
        p = self._replication.followers.get(peer.id)
        if p is not None:
            p.need_send = True
        if self._wants_in():
            self._join_at = now

    def peer_down(self, peer_id: MemberId, now: float) -> None:
        """The transport lost `peer_id` (it keeps reconnecting on its own)."""
        self._now = now
        self._down.add(peer_id)

    def receive(self, sender: MemberId, data: bytes, now: float) -> None:
        """One protocol message from `sender`; malformed or foreign ones are dropped and counted."""
        self._now = now
        if self._left:
            return
        try:
            msg = decode(data, self._cfg.max_payload)
        except CodecError as e:
            self._stats.dropped_messages += 1
            logger.warning("%s: dropped a bad message from %s: %s", self._id, sender, e)
            return
        if not self._same_cluster(sender, msg):
            return
        body = msg.body
        # Raft: a newer term ends ours (vote requests are judged in _on_vote_request). A
        # refused pre-vote carries the refuser's term (etcd raft does the same): members
        # that went ahead in term without winning (their campaign ignored under a leader's
        # lease) refuse every pre-vote of a lower term, and the longer logs, stuck below
        # it, could never win theirs.
        raft = isinstance(body, Append | AppendResponse) or (
            isinstance(body, VoteResponse) and not (body.pre and body.granted)
        )
        if raft and msg.term > self._term:
            self._new_term(msg.term)
        if isinstance(body, Append):
            self._on_append(sender, msg, body)
        elif isinstance(body, AppendResponse):
            self._on_append_response(sender, msg.term, body)
        elif isinstance(body, VoteRequest):
            self._on_vote_request(sender, msg.term, body)
        elif isinstance(body, VoteResponse):
            self._on_vote_response(sender, msg.term, body)
        elif isinstance(body, Forward):
            self._on_forward(sender, body)
        elif isinstance(body, Join):
            self._on_join(sender, msg)
        elif isinstance(body, Purged):
            self._on_purged(sender, body)
        elif isinstance(body, Leave):
            self._on_leave(sender, body)
        elif isinstance(body, TimeoutNow):
            self._on_timeout_now(sender, msg.term)
        else:
            self._on_flow(sender, body)

    def tick(self, now: float) -> None:
        """Timers: heartbeats, elections, check-quorum, eviction, resends."""
        self._now = now
        if self._leaving and not self._left and now >= self._leave_at:
            self._ask_to_leave(now)
        if self._role is Role.LEADER:
            self._leader_tick(now)
        else:
            if now >= self._election_at:
                self._election_timeout(now)
            if self._wants_in() and now >= self._join_at:
                self._send_join()
                self._join_at = now + self._cfg.election_timeout
        if self._outstanding and now >= self._resend_at:
            self._resend_stale(now)

    def submit(self, payload: bytes, now: float) -> int:
        """Order `payload`; returns a token answered later by exactly one `Submitted`."""
        self._now = now
        token = self._outstanding.token()
        error = None
        if self._me.arbitrator:
            error = "an arbitrator does not submit"
        elif not self._primary:
            error = "non-primary: this member is not in the primary component"
        elif len(payload) > self._cfg.max_payload:
            error = f"payload of {len(payload)} bytes exceeds max_payload"
        if error is not None:
            self._actions.append(Submitted(token, None, error))
            return token
        self._outstanding.add(token, payload)
        return token

    def set_apply_queue(self, length: int, now: float) -> bool:
        """How many delivered payloads this member has not applied yet (flow control).

        True when flow control may act on it now (a threshold crossed): only then does the
        driver need `take_actions()` soon; otherwise the length just rides on the next ack.
        """
        self._now = now
        old, self._apply_queue = self._apply_queue, 0 if self._me.arbitrator else length
        if self._role is Role.LEADER:
            return self._flow.wanted(self._apply_queue) != self._flow.wanted(old)
        threshold = self._flow.resume_at if self._reported_over else self._flow.limit
        return (self._apply_queue > threshold) != self._reported_over

    def take_actions(self) -> list[Action]:
        """Everything to do now, in order; `Deliver`/`ViewChange` must reach the app in order."""
        if self._role is Role.LEADER:
            self._leader_flush()
        else:
            self._follower_flush()
        out = self._actions
        self._actions = []
        return out

    def next_deadline(self) -> float:
        """The time by which `tick()` must be called next."""
        if self._role is Role.LEADER:
            deadline = min(self._heartbeat_at, self._quorum_check_at)
        else:
            deadline = self._election_at
            if self._wants_in():
                deadline = min(deadline, self._join_at)
        if self._outstanding:
            deadline = min(deadline, self._resend_at)
        if self._leaving and not self._left:
            deadline = min(deadline, self._leave_at)
        return deadline

    # ---- log bookkeeping ------------------------------------------------------------------

    def _load_log(self) -> None:
        """Rebuild what is not stored after a (re)start: the log's summary, the delivered
        requests, the seqno delivered, the members to dial."""
        self._log = LocalLog(self._storage, self._delivered)
        st = self._storage
        base = st.base()[0]
        self._committed_order = RequestOrder()  # requests delivered, per origin
        self._delivered_seqno = base.seqno if base and base.index == self._delivered else 0
        for e in st.entries(st.first_index(), self._delivered + 1):
            if e.kind is EntryKind.PAYLOAD:
                self._committed_order.note(e.origin, e.incarnation, e.request)
            self._delivered_seqno = e.seqno
        for e in (self._log.config_entry, *self._log.pending_views):
            if e is not None:
                self._dial(e)

    def _append(self, entries: list[Entry]) -> None:
        self._log.append(entries)
        for e in entries:
            if e.kind is EntryKind.VIEW:
                self._dial(e)
                if self._role is Role.LEADER:
                    self._track_voters()

    def _truncate_from(self, index: int) -> None:
        logger.info("%s: dropping uncommitted entries from index %d", self._id, index)
        self._log.truncate_from(index)

    def _dial(self, e: Entry) -> None:
        assert e.config is not None
        for m in (*e.config.members, *(e.config.old or ())):
            if m.id != self._id and self._dialed.get(m.id) != m.address:
                self._dialed[m.id] = m.address
                self._actions.append(Connect(m))

    def _persist(self) -> None:
        self._storage.save_hard_state(
            HardState(self._term, self._voted_for, self._cluster_uuid, self._delivered)
        )

    # ---- messages -------------------------------------------------------------------------

    def _send(self, to: MemberId, body: Body, term: int | None = None) -> None:
        msg = Message(self._cluster_uuid or NIL_UUID, self._term if term is None else term, body)
        self._actions.append(Send(to, encode(msg)))

    def _same_cluster(self, sender: MemberId, msg: Message) -> bool:
        if msg.cluster_uuid == NIL_UUID or self._cluster_uuid in (None, msg.cluster_uuid):
            return True
        self._stats.dropped_messages += 1
        if (sender, msg.cluster_uuid) not in self._refused:
            self._refused.add((sender, msg.cluster_uuid))
            logger.error(
                "%s: refusing %s: it belongs to cluster %s, this member to cluster %s",
                self._id, sender, msg.cluster_uuid, self._cluster_uuid,
            )  # fmt: skip
        return False

    def _new_term(self, term: int) -> None:
        if self._role is Role.LEADER:
            logger.warning(
                "%s: leader of term %d steps down: term %d seen", self._id, self._term, term
            )
        self._term = term
        self._voted_for = None
        self._persist()
        self._become_follower(None)

    def _become_follower(self, leader: MemberId | None) -> None:
        self._role = Role.FOLLOWER
        self._leader = leader
        self._replication.followers.clear()
        self._proposals.clear()
        self._set_primary(False)
        self._election_at = self._now + self._election_jitter()

    # ---- follower side --------------------------------------------------------------------

    def _on_append(self, sender: MemberId, msg: Message, body: Append) -> None:
        if msg.term < self._term:
            self._send(sender, AppendResponse(False, self._log.last_index, self._apply_queue))
            return
        if self._role is Role.LEADER:
            logger.error("%s: second leader %s in term %d ignored", self._id, sender, self._term)
            return
        if self._role is not Role.FOLLOWER or self._leader != sender:
            self._become_follower(sender)
            logger.info("%s: following %s in term %d", self._id, sender, self._term)
            self._resend_all()
        self._leader_contact = self._now
        self._election_at = self._now + self._election_jitter()
        if self._cluster_uuid is None:
            self._cluster_uuid = msg.cluster_uuid
            self._persist()
            logger.info("%s: joined cluster %s", self._id, self._cluster_uuid)

        matched_to = body.prev_index + len(body.entries)
        entries = body.entries
        if body.prev_index < self._commit:
            # committed entries match the leader's by Raft's log matching: skip them
            entries = entries[self._commit - body.prev_index :]
        elif self._log.term_at(body.prev_index) != body.prev_term:
            self._ack = AppendResponse(False, self._retry_hint(body.prev_index), self._apply_queue)
            return
        for i, e in enumerate(entries):
            if e.index <= self._log.last_index:
                if self._log.term_at(e.index) == e.term:
                    continue
                self._truncate_from(e.index)
            self._append(list(entries[i:]))
            break
        self._commit = max(self._commit, min(body.commit, matched_to))
        self._ack = AppendResponse(True, matched_to, self._apply_queue)
        self._set_flow_control(body.fc_paused)
        if body.primary:
            self._set_primary(True)
            # our commit point is an entry of the leader's term: its opening view is
            # committed and held, and with it every entry committed in earlier terms
            if self._amnesiac and self._log.term_at(self._commit) == self._term:
                self._amnesiac = False
                logger.info("%s: caught up to commit index %d: votes now", self._id, self._commit)
        self._deliver()

    def _retry_hint(self, prev_index: int) -> int:
        """Where the leader should retry: skip back over the whole conflicting term."""
        if prev_index > self._log.last_index:
            return self._log.last_index
        conflict = self._log.term_at(prev_index)
        i = prev_index - 1
        while i > self._commit and self._log.term_at(i) == conflict:
            i -= 1
        return i

    def _on_purged(self, sender: MemberId, body: Purged) -> None:
        cfg = self._log.config
        # A member with no configuration yet (joining for the first time) knows no voters:
        # it must still hear that what it lacks is gone, or it would wait for it forever.
        if cfg is not None and sender not in cfg.voters():
            return
        if self._behind_reported != (sender, body.oldest_seqno):
            self._behind_reported = (sender, body.oldest_seqno)
            logger.warning(
                "%s: behind: delivered seqno %d, %s holds from seqno %d: state transfer needed",
                self._id, self._delivered_seqno, sender, body.oldest_seqno,
            )  # fmt: skip
            self._actions.append(Behind(self._delivered_seqno, body.oldest_seqno, sender))

    def _follower_flush(self) -> None:
        leader = self._leader
        if leader is None:
            return
        if self._ack is not None:
            self._send(
                leader, AppendResponse(self._ack.success, self._ack.index, self._apply_queue)
            )
            self._ack = None
        threshold = self._flow.resume_at if self._reported_over else self._flow.limit
        over = self._apply_queue > threshold
        if over != self._reported_over:
            self._reported_over = over
            if over:
                self._stats.flow_control_sent += 1
            self._send(leader, Flow(self._apply_queue))
        if self._outstanding.has_unsent() and self._primary and not self._flow.paused:
            batch = self._outstanding.take_unsent(self._now)
            if batch:
                ordered = self._outstanding.ordered
                self._send(leader, Forward(self._incarnation, ordered, batch))

    # ---- submissions ----------------------------------------------------------------------

    def _resend_all(self) -> None:
        """A new leader: offer it every submission not ordered yet, in order."""
        self._outstanding.resend_all()

    def _resend_stale(self, now: float) -> None:
        interval = 2 * self._cfg.heartbeat_interval
        self._resend_at = now + interval
        self._outstanding.resend_older_than(now - interval)

    def _on_forward(self, sender: MemberId, body: Forward) -> None:
        # only members of the configuration replicate (an evicted one must rejoin first)
        if (
            self._role is Role.LEADER
            and sender in self._replication.followers
            and sender not in self._catch_up
        ):
            self._propose(sender, body.incarnation, body.ordered, body.requests)

    def _propose(
        self, origin: MemberId, incarnation: int, ordered: int, requests: Requests
    ) -> None:
        for request, payload in self._request_order.accept(origin, incarnation, ordered, requests):
            self._proposals.append((origin, incarnation, request, payload))

    # ---- delivery -------------------------------------------------------------------------

    def _set_primary(self, primary: bool) -> None:
        if primary == self._primary:
            return
        self._primary = primary
        if primary:
            logger.info(
                "%s: primary (%s, leader %s, term %d)", self._id, self._role.value, self._leader,
                self._term,
            )  # fmt: skip
            if self._log.stable_view is not None:
                self._emit_view(self._log.stable_view, primary=True)
            return
        logger.warning(
            "%s: non-primary (%s, term %d, delivered seqno %d)", self._id, self._role.value,
            self._term, self._delivered_seqno,
        )  # fmt: skip
        if self._log.stable_view is not None:
            self._emit_view(self._log.stable_view, primary=False)

    def _emit_view(self, e: Entry, primary: bool) -> None:
        assert e.config is not None and self._cluster_uuid is not None
        members = e.config.members
        own = next((i for i, m in enumerate(members) if m.id == self._id), -1)
        view = View(self._cluster_uuid, e.conf_id if primary else -1, members, primary, own)
        self._view = view
        self._flow.scale(sum(not m.arbitrator for m in members))
        self._actions.append(ViewChange(view))

    def _deliver(self) -> None:
        """Hand out committed entries in log order (only while in the primary component)."""
        if not self._primary or self._delivered >= self._commit:
            return
        me = (self._id, self._incarnation)
        arbitrator = self._me.arbitrator
        stats = self._stats
        actions = self._actions
        while self._delivered < self._commit:
            hi = min(self._commit, self._delivered + 4096)
            for e in self._log.entries(self._delivered + 1, hi + 1):
                if e.kind is EntryKind.PAYLOAD:
                    self._committed_order.note(e.origin, e.incarnation, e.request)
                    if not arbitrator:
                        actions.append(Deliver(e.seqno, e.origin, e.payload))
                    if (e.origin, e.incarnation) == me:
                        stats.replicated += 1
                        stats.replicated_bytes += len(e.payload)
                        token = self._outstanding.resolve(e.request)
                        if token is not None:
                            actions.append(Submitted(token, e.seqno))
                    else:
                        stats.received += 1
                        stats.received_bytes += len(e.payload)
                else:
                    self._log.delivered_view(e)
                    if not _joint(e):
                        if self._leavers:
                            self._tell_leavers(e)
                        self._emit_view(e, primary=True)
                        logger.info(
                            "%s: view conf_id=%d members=%s at seqno %d", self._id, e.conf_id,
                            ",".join(m.id for m in e.config.members), e.seqno,
                        )  # fmt: skip
            self._delivered = hi
            self._delivered_seqno = e.seqno
        self._persist()

    # ---- elections ------------------------------------------------------------------------

    def _election_jitter(self) -> float:
        t = self._cfg.election_timeout
        return self._rng.uniform(t, 2 * t)

    def _can_campaign(self) -> bool:
        # Raft (Ongaro 4.2.2): a member the latest configuration removes still campaigns
        # until that configuration commits (its own vote then does not count): a leader
        # that removed itself may be needed to commit its removal.
        cfg, committed = self._log.config, self._log.config_entry
        return (
            not self._me.arbitrator
            and cfg is not None
            and (
                self._id in cfg.voters()
                or (committed is not None and self._id in committed.config.voters())
            )
            and self._cluster_uuid is not None
            and not self._amnesiac
            and not self._left
        )

    def _wants_in(self) -> bool:
        """Not attached to a primary component: keep asking to be (re)admitted."""
        return not self._primary and self._role is not Role.LEADER and not self._leaving

    def _election_timeout(self, now: float) -> None:
        self._election_at = now + self._election_jitter()
        if self._leader is not None:
            logger.warning(
                "%s: no word from leader %s for %.1fs", self._id, self._leader,
                now - self._leader_contact,
            )  # fmt: skip
        self._leader = None
        self._set_primary(False)
        if self._can_campaign():
            self._campaign(pre=True)

    def _campaign(self, pre: bool, transfer: bool = False) -> None:
        cfg = self._log.config
        assert cfg is not None
        if pre:
            self._role = Role.PRE_CANDIDATE
        else:
            self._role = Role.CANDIDATE
            self._term += 1
            self._voted_for = self._id
            self._persist()
            logger.info("%s: campaigning for term %d", self._id, self._term)
        self._votes = {self._id}
        if cfg.has_quorum(self._votes):
            self._won(pre)
            return
        request = VoteRequest(pre, self._log.last_index, self._log.last_term, transfer)
        term = self._term + 1 if pre else self._term
        for voter in cfg.voters() - {self._id}:
            self._send(voter, request, term)

    def _won(self, pre: bool) -> None:
        if pre:
            self._campaign(pre=False)
        else:
            self._become_leader()

    def _leader_is_fresh(self) -> bool:
        if self._role is Role.LEADER:
            return True
        return self._leader is not None and (
            self._now - self._leader_contact < self._cfg.election_timeout
        )

    def _on_vote_request(self, sender: MemberId, term: int, body: VoteRequest) -> None:
        # check-quorum's lease: while a leader is heard from, nobody may start a new term
        if (self._leader_is_fresh() and not body.transfer) or self._amnesiac:
            if not body.pre and term > self._term:
                return
            self._send(sender, VoteResponse(body.pre, False))
            return
        log_ok = (body.last_term, body.last_index) >= (self._log.last_term, self._log.last_index)
        if body.pre:
            granted = term > self._term and log_ok
            self._send(sender, VoteResponse(True, granted), term if granted else self._term)
            return
        if term > self._term:
            self._new_term(term)
        granted = term == self._term and log_ok and self._voted_for in (None, sender)
        if granted:
            self._voted_for = sender
            self._persist()
            self._election_at = self._now + self._election_jitter()
        self._send(sender, VoteResponse(False, granted))

    def _on_vote_response(self, sender: MemberId, term: int, body: VoteResponse) -> None:
        if not body.granted:
            return
        if body.pre:
            if self._role is not Role.PRE_CANDIDATE or term != self._term + 1:
                return
        elif self._role is not Role.CANDIDATE or term != self._term:
            return
        self._votes.add(sender)
        cfg = self._log.config
        if cfg is not None and cfg.has_quorum(self._votes):
            self._won(body.pre)

    # ---- leader side ----------------------------------------------------------------------

    def _bootstrap(self, now: float) -> None:
        if self._log.last_index > 0 or self._storage.base()[0] is not None:
            logger.warning("%s: bootstrap ignored: this member already has a log", self._id)
            return
        if self._cluster_uuid is None:
            self._cluster_uuid = uuid.UUID(int=self._rng.getrandbits(128), version=4)
        self._term = 1
        self._voted_for = self._id
        self._amnesiac = False
        self._persist()
        logger.info("%s: bootstrapping cluster %s", self._id, self._cluster_uuid)
        self._become_leader(Configuration((self._me,)))

    def _become_leader(self, config: Configuration | None = None) -> None:
        self._role = Role.LEADER
        self._leader = self._id
        self._ack = None
        now = self._now
        self._heartbeat_at = now
        self._quorum_check_at = now + self._cfg.election_timeout
        self._joins.clear()
        self._catch_up.clear()
        self._leaves.clear()  # the leavers repeat their requests
        self._leavers.clear()
        self._bump_view = False
        # every entry still in our log may come back as a forward: remember who sent what
        self._request_order = self._committed_order.copy()
        for e in self._log.entries(self._delivered + 1, self._log.last_index + 1):
            if e.kind is EntryKind.PAYLOAD:
                self._request_order.note(e.origin, e.incarnation, e.request)
        self._replication = Replication(self._log, self._cfg)
        cfg = config or self._log.config
        assert cfg is not None
        logger.info(
            "%s: leader of term %d, log ends at %d", self._id, self._term, self._log.last_index
        )
        # open the term with a view entry: Raft's no-op, and Galera's new primary view
        self._append([self._view_entry(cfg)])
        self._resend_all()
        self._advance_commit()

    def _view_entry(self, cfg: Configuration) -> Entry:
        conf_id = self._log.last_conf_id + (0 if cfg.joint else 1)
        return Entry(
            self._term, self._log.last_index + 1, self._log.last_seqno, conf_id, EntryKind.VIEW,
            config=cfg,
        )  # fmt: skip

    def _track_voters(self) -> None:
        cfg = self._log.config
        assert cfg is not None
        self._replication.track((cfg.voters() | set(self._catch_up)) - {self._id}, self._now)

    def _leader_tick(self, now: float) -> None:
        cfg = self._log.config
        assert cfg is not None
        if now >= self._quorum_check_at:
            heard = self._replication.heard_since(now - self._cfg.election_timeout)
            if not cfg.has_quorum(heard | {self._id}):
                logger.warning(
                    "%s: leader of term %d lost quorum (hears %s): stepping down", self._id,
                    self._term, ",".join(sorted(heard)) or "nobody",
                )  # fmt: skip
                self._become_follower(None)
                return
            self._quorum_check_at = now + self._cfg.election_timeout
        if now >= self._heartbeat_at:
            self._heartbeat_at = now + self._cfg.heartbeat_interval
            for m in self._replication.heartbeat(now):
                silent = now - self._replication.followers[m].last_contact
                logger.warning("%s: suspecting %s (silent %.1fs)", self._id, m, silent)

    def _on_append_response(self, sender: MemberId, term: int, body: AppendResponse) -> None:
        if self._role is not Role.LEADER or term != self._term:
            return
        p = self._replication.followers.get(sender)
        if p is None:
            return
        p.last_contact = self._now
        p.apply_queue = body.apply_queue
        if p.suspected:
            p.suspected = False
            self._bump_view |= sender not in self._catch_up
            logger.info("%s: %s is back", self._id, sender)
        # (a follower that reached only what is committed cannot move the commit point)
        if self._replication.acknowledged(p, body.success, body.index) and p.match > self._commit:
            self._advance_commit()

    def _on_flow(self, sender: MemberId, body: Flow) -> None:
        p = self._replication.followers.get(sender)
        if self._role is Role.LEADER and p is not None:
            p.apply_queue = body.apply_queue

    def _on_join(self, sender: MemberId, msg: Message) -> None:
        assert isinstance(msg.body, Join)
        info = msg.body.member
        if info.id == self._id:
            return
        if self._role is not Role.LEADER:
            if self._leader is not None and self._leader != sender:
                self._send(self._leader, msg.body)
            return
        cfg = self._log.config
        assert cfg is not None
        p = self._replication.followers.get(info.id)
        if p is not None:
            p.need_send = True
        self._leaves.discard(info.id)  # back after a leave that timed out: it stays
        self._leavers.discard(info.id)
        if cfg.info(info.id) != info:
            if info.id not in self._joins:
                logger.info("%s: %s asks to join (%s)", self._id, info.id, info.address)
            self._joins[info.id] = info

    def _send_join(self) -> None:
        cfg = self._log.config
        targets = set(self._peers) | (cfg.voters() if cfg else set())
        for peer in targets - self._down - {self._id}:
            self._send(peer, Join(self._me))

    def _advance_commit(self) -> None:
        if self._log.last_index <= self._commit:
            return
        cfg = self._log.config
        assert cfg is not None
        n = self._replication.commit_point(self._id, cfg, self._commit, self._term)
        if n > self._commit:
            # an entry of our own term commits: our view is in; we are primary
            self._commit = n
            self._set_primary(True)
            self._deliver()

    def _change_membership(self) -> None:
        """One membership change at a time, each through a joint configuration."""
        if not self._primary or self._log.change_in_flight(self._commit):
            return
        cfg = self._log.config
        assert cfg is not None
        if cfg.joint:
            self._append([self._view_entry(Configuration(cfg.members))])
            return
        if not self._in_config():
            return  # we left it: we only commit that, the next leader does the rest
        members = cfg.members
        now = self._now
        for m in members:
            p = self._replication.followers.get(m.id)
            if p is not None and now - p.last_contact > self._cfg.inactive_timeout:
                logger.warning(
                    "%s: evicting %s (silent %.1fs)", self._id, m.id, now - p.last_contact
                )
                self._stats.extra["evictions"] = self._stats.extra.get("evictions", 0) + 1
                new = tuple(x for x in members if x.id != m.id)
                self._append([self._view_entry(Configuration(new, members))])
                return
        while self._leaves:
            leaver = min(self._leaves)  # (deterministic, for the simulation's replays)
            self._leaves.discard(leaver)
            new = tuple(x for x in members if x.id != leaver)
            if len(new) < len(members) and _can_lead_without(cfg, leaver):
                logger.info("%s: removing %s: it leaves the group", self._id, leaver)
                self._append([self._view_entry(Configuration(new, members))])
                return
        info = self._next_admission(cfg)
        if info is not None:
            new = (*(x for x in members if x.id != info.id), info)
            logger.info("%s: admitting %s", self._id, info.id)
            self._append([self._view_entry(Configuration(new, members))])
            self._replication.followers[info.id].need_send = True
            return
        if self._bump_view:
            self._bump_view = False
            self._append([self._view_entry(cfg)])

    def _next_admission(self, cfg: Configuration) -> MemberInfo | None:
        """A joiner to admit now: a member whose address changed, or a new one once it
        caught up. Until then a new member follows without a vote (Raft thesis 4.2.1, etcd's
        learners), so one that goes away early never becomes a vote the group waits for."""
        for member_id, info in sorted(self._joins.items()):
            known = cfg.info(member_id)
            if known is None and not self._caught_up(member_id):
                continue
            del self._joins[member_id]
            if known != info:
                return info
        return None

    def _caught_up(self, member_id: MemberId) -> bool:
        """Catch-up rounds (Raft thesis 4.2.1): each round's target is the commit index at
        its start; a round done within an election timeout means the member is close."""
        now = self._now
        round_ = self._catch_up.get(member_id)
        if round_ is None:
            # started while primary: everything sent to it carries a commit of this term,
            # so reaching the target also ends its amnesia (see _on_append)
            self._catch_up[member_id] = (self._commit, now)
            self._track_voters()
            logger.info("%s: %s catches up from commit index %d", self._id, member_id, self._commit)
            return False
        p = self._replication.followers[member_id]
        if now - p.last_contact > self._cfg.inactive_timeout:
            logger.warning("%s: %s went silent while catching up: dropped", self._id, member_id)
            self._drop_joiner(member_id)
            return False
        target, began = round_
        if p.match < target:
            return False
        if now - began > self._cfg.election_timeout:
            self._catch_up[member_id] = (self._commit, now)  # a slow round: one more
            return False
        del self._catch_up[member_id]
        return True

    def _drop_joiner(self, member_id: MemberId) -> None:
        self._joins.pop(member_id, None)
        if self._catch_up.pop(member_id, None) is not None:
            self._track_voters()

    def _leader_flush(self) -> None:
        if self._outstanding.has_unsent():
            ordered = self._outstanding.ordered
            requests = self._outstanding.take_unsent(self._now)
            self._propose(self._id, self._incarnation, ordered, requests)
        self._update_flow_control()
        if self._proposals and not self._flow.paused and self._primary and self._in_config():
            self._append_proposals()
        self._change_membership()
        self._advance_commit()
        assert self._cluster_uuid is not None
        header = Header(
            self._cluster_uuid, self._term, self._commit, self._primary, self._flow.paused
        )
        for to, data in self._replication.messages(header, self._down):
            self._actions.append(Send(to, data))
        self._step_down_if_removed()

    def _in_config(self) -> bool:
        """False once the latest configuration leaves us out. A leader then appends nothing
        more: the members that stay must hold a log at least as long as any arbitrator's,
        or none of them could win its vote."""
        cfg = self._log.config
        return cfg is not None and cfg.info(self._id) is not None

    def _step_down_if_removed(self) -> None:
        """Raft: a leader outside the committed configuration steps down, after the round
        that tells the followers it committed (they elect a leader among themselves)."""
        view, cfg = self._log.stable_view, self._log.config
        if view is None or cfg is None or cfg.info(self._id) is not None:
            return
        assert view.config is not None
        if view.config.info(self._id) is not None:
            return
        logger.warning("%s: leader no longer in the view: stepping down", self._id)
        successor = self._successor(view.config)
        self._become_follower(None)
        if successor is not None:
            # Raft's leadership transfer: no election timeout of writes stalled
            logger.info("%s: handing over to %s", self._id, successor)
            self._send(successor, TimeoutNow())
        if self._leaving:
            self._quit("removed from the configuration")

    def _successor(self, config: Configuration) -> MemberId | None:
        """The follower to hand leadership to: one that could lead and holds our whole log
        (so its campaign can win every vote), the first by name among equals."""
        followers = self._replication.followers
        caught_up = [
            m.id
            for m in config.members
            if not m.arbitrator
            and m.id in followers
            and followers[m.id].match == self._log.last_index
        ]
        return min(caught_up, default=None)

    def _on_timeout_now(self, sender: MemberId, term: int) -> None:
        """Our leader stepped down and handed over: campaign now, skipping pre-vote (the
        voters' lease is lifted by the request's `transfer` flag, as in etcd raft)."""
        if sender != self._leader or term != self._term or not self._can_campaign():
            return
        logger.info("%s: %s hands leadership over: campaigning now", self._id, sender)
        self._election_at = self._now + self._election_jitter()
        self._leader = None
        self._set_primary(False)
        self._campaign(pre=False, transfer=True)

    # ---- leaving --------------------------------------------------------------------------

    def _ask_to_leave(self, now: float) -> None:
        self._leave_at = now + self._cfg.heartbeat_interval
        if self._role is Role.LEADER:
            self._leaves.add(self._id)
            return
        cfg = self._log.config
        assert cfg is not None
        targets = {self._leader} if self._leader is not None else cfg.voters() - {self._id}
        for peer in sorted(targets - self._down):
            self._send(peer, Leave(False))

    def _on_leave(self, sender: MemberId, body: Leave) -> None:
        cfg = self._log.config
        if body.done:
            # the leader's word that our removal committed
            if self._leaving and cfg is not None and sender in cfg.voters():
                self._quit(f"{sender} committed the configuration without it")
            return
        if self._role is not Role.LEADER or cfg is None:
            return
        view = self._log.stable_view
        assert view is not None and view.config is not None
        if sender in cfg.voters() or view.config.info(sender) is not None:
            if sender not in self._leavers:
                logger.info("%s: %s asks to leave", self._id, sender)
            self._leaves.add(sender)
            self._leavers.add(sender)
        else:
            self._drop_joiner(sender)
            self._send(sender, Leave(True))

    def _tell_leavers(self, view: Entry) -> None:
        """A committed view: tell the members it leaves out at once (not at their next ask)."""
        assert view.config is not None
        for member in sorted(self._leavers):
            if view.config.info(member) is None:
                self._leavers.discard(member)
                self._send(member, Leave(True))

    def _quit(self, why: str) -> None:
        self._left = True
        self._become_follower(None)
        logger.info(
            "%s: left the group (%s) at delivered seqno %d", self._id, why, self._delivered_seqno
        )

    def _append_proposals(self) -> None:
        seqno = self._log.last_seqno
        index = self._log.last_index
        term, conf_id = self._term, self._log.last_conf_id
        entries = []
        for origin, incarnation, request, payload in self._proposals:
            seqno += 1
            index += 1
            entries.append(
                Entry(
                    term,
                    index,
                    seqno,
                    conf_id,
                    EntryKind.PAYLOAD,
                    origin,
                    incarnation,
                    request,
                    payload,
                )
            )
        self._proposals.clear()
        self._append(entries)

    # ---- flow control ---------------------------------------------------------------------

    def _update_flow_control(self) -> None:
        now = self._now
        queues = [self._apply_queue]
        queues += [
            p.apply_queue
            for m, p in self._replication.followers.items()
            if now - p.last_contact <= self._cfg.suspect_timeout and m not in self._catch_up
        ]
        paused = self._flow.wanted(max(queues))
        if paused and not self._flow.paused and self._flow.wanted(self._apply_queue):
            self._stats.flow_control_sent += 1  # our own queue is (one of) the reason(s)
        self._set_flow_control(paused)

    def _set_flow_control(self, paused: bool) -> None:
        if not self._flow.set(paused, self._now):
            return
        if paused:
            self._stats.flow_control_recv += 1
            logger.info("%s: flow control: paused", self._id)
        else:
            self._stats.flow_control_paused_seconds = self._flow.paused_seconds
            logger.info(
                "%s: flow control: resumed after %.3fs", self._id, self._now - self._flow.since()
            )
        for p in self._replication.followers.values():
            p.need_send = True
        self._actions.append(FlowControl(paused))


def _can_lead_without(cfg: Configuration, member: MemberId) -> bool:
    """Another member of `cfg` could lead (an arbitrator never campaigns)."""
    return any(m.id != member and not m.arbitrator for m in (*cfg.members, *(cfg.old or ())))


def _joint(e: Entry) -> bool:
    return e.config is not None and e.config.joint
