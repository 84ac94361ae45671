"""The live dashboard: one self-contained page (no CDN: it works offline and behind a VPC).

It polls ``/stats/totals`` and ``/ads/top`` every second and shows the counted
impressions and clicks per second (the change of the totals between polls), a
sparkline of the last two minutes and the top ads of the last five minutes.
"""

from __future__ import annotations

from importlib.resources import files

DASHBOARD_HTML = (files("adstream.aggregate") / "static" / "dashboard.html").read_text("utf-8")
