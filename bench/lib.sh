# Shell helpers of the benchmark scripts (sourced by bench/run.sh and bench/report_bench.sh).

# A command as one would type it: arguments with shell characters in double quotes.
typed() {
  local a out=()
  for a in "$@"; do
    if [[ $a =~ [^A-Za-z0-9_./:=,+@%-] ]]; then out+=("\"$a\""); else out+=("$a"); fi
  done
  printf '%s\n' "${out[*]}"
}
