"""The app's screens: runs browser, new run, live run, compare, and their dialogs."""
