"""Run by test_crash.py in a child process: send, and be killed (SIGKILL) mid-way."""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

from o2oloop import clock
from o2oloop.campaigns import runner, send
from o2oloop.campaigns.policy import Policy
from o2oloop.db import Database
from o2oloop.notify import dispatch
from o2oloop.notify.email import MemorySender
from o2oloop.notify.sms import SandboxSmsProvider


def main() -> None:
    url, secret, what, at = sys.argv[1:5]
    clock.install(clock.FrozenClock(datetime.fromisoformat(at)))
    db = Database.from_url(url)
    policy = Policy(secret_key=secret, platform_cap_days=0)
    calls = {"n": 0}
    if what == "send":
        send.BATCH = 25
        real = send._issue_and_queue

        def crashing(*args, **kwargs):
            rows = real(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == 3:  # codes and messages written, not committed
                os.kill(os.getpid(), signal.SIGKILL)
            return rows

        send._issue_and_queue = crashing
        runner.send_all(db, policy=policy, senders=1)  # the kill lands after two batches
    else:
        provider = SandboxSmsProvider(db, failure_rate=0.0)
        real_send = provider.send

        def crashing_send(**kwargs):
            provider_id = real_send(**kwargs)
            calls["n"] += 1
            if calls["n"] == 7:  # the provider has it; we have not recorded that yet
                os.kill(os.getpid(), signal.SIGKILL)
            return provider_id

        provider.send = crashing_send
        dispatch.dispatch(db, sms=provider, email=MemorySender())


if __name__ == "__main__":
    main()
