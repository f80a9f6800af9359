"""`around`: a permalink's page (`GET /api/messages?around=<id>`) against a plain older page
(`?before=<id>`) on the same 1M-row database and server, alternating in every repetition. The
issue's bar: around's p99 within 1.3x of before's."""

from __future__ import annotations

import logging

from bench.dbtools import build_history
from bench.scenarios import HISTORY_METRICS, Block, Context, history_run, running

logger = logging.getLogger(__name__)
CURSORS = ("before", "around")


def around(ctx: Context) -> None:
    o = ctx.options
    rows = max(o.history_rows)
    title = (
        f"permalink pages: GET /api/messages?around=<random id> vs ?before=<random id>,"
        f" limit {o.history_limit}, {rows:,} rows, {o.history_concurrency} keep-alive"
        f" connections, {o.duration:g} s"
    )
    ctx.block(Block("around", "", title, CURSORS, HISTORY_METRICS, (("around", "before"),)))
    db = ctx.scratch / f"around-{rows}.db"
    logger.info("building a %d-row history database", rows)
    build_history(db, rows)
    with running(ctx, ["chat"], db_path=db) as servers:
        for rep in range(o.reps):
            for cursor in CURSORS:
                ctx.record(
                    history_run(
                        ctx, servers["chat"], rows, cursor, rep, scenario="around", cursor=cursor
                    )
                )
