"""The AI Olympics (week 16's capstone): teams submit models for a track, staff run every submission on
every board, and a leaderboard ranks them.

One module per job:

  tracks.py       a track = one TOML file: task, test and calibration sets, metric, per-board limits, weights
  submissions.py  a team's folder: submission.json and one model file, read with size limits
  worker.py       the child process that evaluates one submission (python -m edgekit.olympics.worker)
  sandbox.py      starts that child with memory, CPU-time and file-size limits, and a wall-clock timeout
  scoring.py      the metric (top-1 accuracy or AUC), the constraints and the score formula
  store.py        results in SQLite as a signed hash chain (HMAC-SHA256, the course key): any row
                  missing, altered, moved or replayed is named, and the store refused
  runner.py       `edgekit olympics run`: every submission on every target, resumable
  check.py        `edgekit olympics check`: is a submission valid, and does it fit each board?
  leaderboard.py  build(store, tracks) -> the leaderboard as a dict (page.py renders it as HTML)
  demo.py         `edgekit olympics demo`: the whole capstone end to end in an empty folder
  parser.py       the arguments of the `edgekit olympics ...` sub-commands
  cli.py          their code (loaded only when one of them runs)

The documentation for staff and teams is docs/olympics.md.
"""
