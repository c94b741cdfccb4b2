from benchmarks.cli import main, stop_on_sigterm

if __name__ == "__main__":
    stop_on_sigterm()
    raise SystemExit(main())
