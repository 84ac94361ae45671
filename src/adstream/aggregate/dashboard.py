"""The live dashboard: one self-contained page (no CDN: it works offline and behind a VPC).

It polls ``/ads/top`` then ``/stats/totals`` every second and shows the counted
impressions and clicks per second (the change of the totals between polls), a chart of
the last two minutes (SVG: time and events/s axes, legend), the top ads of the last five
minutes with that window's total, and the totals since start. Each card names its window.
"""

from __future__ import annotations

from importlib.resources import files

DASHBOARD_HTML = (files("adstream.aggregate") / "static" / "dashboard.html").read_text("utf-8")
