"""Widgets of the app: heatmap, bar list, throttled line chart, run header, runs table."""
