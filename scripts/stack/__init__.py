"""The production stack on well-kept engines, and the drills that prove it.

Production runs Minqing Map on Debian packages, none of them home-made:

* **etcd** (``etcd-server``): the consensus store Patroni keeps the cluster's state in;
* **Patroni** (``patroni``): a PostgreSQL 15 + PostGIS primary and streaming replicas,
  synchronous replication (a commit waits for a replica, so a failover loses no acknowledged
  report) and automatic failover;
* **pgBackRest** (``pgbackrest``): WAL archiving, full and incremental backups, point-in-time
  restore;
* **HAProxy** (``haproxy``): one port to the current primary, one to the replicas that lag
  less than ``MINQING_REPLICA_MAX_LAG_BYTES``, both following Patroni's REST checks;
* **nginx**: TLS and HTTP/2, gzip and brotli, static files, request size limits, the client's
  address for the application;
* the application under uvicorn (``scripts/serve.sh``), the import worker, and timers
  (audit anchors, escalation, backups) under systemd.

One set of templates (``scripts/stack/templates/``) renders both the unprivileged single-machine
stack under ``var/stack`` that ``make drill``, ``make restore-drill`` and the tests run, and the
configuration files a production install copies to ``/etc`` (``python -m scripts.stack render
--production DIR``; README "Production").
"""
