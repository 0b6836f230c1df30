#!/usr/bin/env bash
# Real programs under each preloaded hakmem shared object (SPEC.md §1: gcc,
# python3, git, sqlite3, a shell): each program runs once without hakmem
# and once under every .so given, in a directory at the same path each time
# with the same environment, and its stdout, stderr and exit status must be
# identical byte for byte.  A program that is not installed is skipped
# with a note (sqlite3 comes from ci/setup.sh).
#
#   real_programs_test.sh LIB.so...      (BUILD.bazel passes both variants)
set -uo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 libhakmem.so..." >&2; exit 2; }
libs=()
for so in "$@"; do
  [[ -f $so ]] || { echo "FAIL: $so not found" >&2; exit 2; }
  libs+=("$(readlink -f "$so")")
done

# A preload that silently failed to load would make every comparison pass.
for so in "${libs[@]}"; do
  # The map is read whole before grep looks: grep -q stops reading at the
  # first match, and with pipefail cat's SIGPIPE would fail the check.
  maps=$(env -i LD_PRELOAD="$so" /bin/cat /proc/self/maps)
  if ! grep -qF "$so" <<<"$maps"; then
    echo "FAIL: $so is not loaded by LD_PRELOAD" >&2
    exit 1
  fi
done

root=${TEST_TMPDIR:-$(mktemp -d)}/real-programs
work=$root/work   # every run happens here, recreated each time
fails=0 skipped=()

# Hermetic environment: nothing from the user's or the sandbox's home, no
# git system or global config, fixed identities, dates, locale and zone.
base_env=(
  PATH=/usr/bin:/bin
  HOME="$root/home"
  TMPDIR="$root/tmp"
  LC_ALL=C
  TZ=UTC
  GIT_CONFIG_NOSYSTEM=1
  GIT_CONFIG_GLOBAL=/dev/null
  GIT_AUTHOR_NAME=hakmem
  GIT_AUTHOR_EMAIL=hakmem@example.invalid
  GIT_AUTHOR_DATE="2024-01-01T00:00:00Z"
  GIT_COMMITTER_NAME=hakmem
  GIT_COMMITTER_EMAIL=hakmem@example.invalid
  GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
  PYTHONHASHSEED=0
  PYTHONDONTWRITEBYTECODE=1
)

# run_in_work OUTPREFIX PRELOAD SCRIPT: runs SCRIPT (bash) in a fresh $work
# with the preload (or none), leaving OUTPREFIX.{out,err,rc}.
run_in_work() {
  local out=$1 preload=$2 script=$3
  rm -rf "$work" "$root/home" "$root/tmp"
  mkdir -p "$work" "$root/home" "$root/tmp"
  local env_args=("${base_env[@]}")
  [[ -n $preload ]] && env_args+=(LD_PRELOAD="$preload")
  (cd "$work" && env -i "${env_args[@]}" /bin/bash -c "$script") >"$out.out" 2>"$out.err"
  echo $? >"$out.rc"
}

# check NAME REQUIRED-COMMAND SCRIPT: the script's output under every
# preloaded .so must equal its output without one.
check() {
  local name=$1 needs=$2 script=$3
  if ! command -v "$needs" >/dev/null; then
    skipped+=("$name ($needs not installed)")
    echo "SKIP: $name: $needs not installed"
    return
  fi
  local ref=$root/$name.plain
  run_in_work "$ref" "" "$script"
  if [[ $(cat "$ref.rc") != 0 ]]; then
    echo "FAIL: $name fails even without hakmem (exit $(cat "$ref.rc")):"
    sed 's/^/  | /' "$ref.err" | tail -20
    fails=$((fails + 1))
    return
  fi
  for so in "${libs[@]}"; do
    local tag
    tag=$(basename "$so" .so)
    local got=$root/$name.$tag
    run_in_work "$got" "$so" "$script"
    local bad=()
    cmp -s "$ref.rc" "$got.rc" || bad+=("exit $(cat "$got.rc") (plain: 0)")
    cmp -s "$ref.out" "$got.out" || bad+=("stdout differs")
    cmp -s "$ref.err" "$got.err" || bad+=("stderr differs")
    if [[ ${#bad[@]} -eq 0 ]]; then
      echo "ok: $name under $tag ($(wc -c <"$got.out") bytes of output identical)"
    else
      echo "FAIL: $name under $tag: ${bad[*]}"
      diff "$ref.out" "$got.out" | head -10 | sed 's/^/  out| /'
      diff "$ref.err" "$got.err" | head -10 | sed 's/^/  err| /'
      fails=$((fails + 1))
    fi
  done
}

# gcc: compile and link a small C program; the binary's hash and its output.
check gcc gcc '
cat >prog.c <<EOF
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(void) {
  int n = 10000, *v = malloc(n * sizeof *v);
  for (int i = 0; i < n; i++) v[i] = (i * 7919) % 10007;
  qsort(v, n, sizeof *v, cmp);
  char *s = strdup("hakmem");
  printf("%d %d %d %s\n", v[0], v[n / 2], v[n - 1], s);
  free(s);
  free(v);
  return 0;
}
EOF
gcc -O2 -Wall -o prog prog.c && sha256sum prog && ./prog'

# g++ (itself C++: cc1plus runs on hakmem's operator new and checked sized
# delete) compiling and running a program that churns the standard
# containers, whose deallocations are sized, and deletes derived objects
# through base pointers (virtual destructors pass the dynamic size).
check g++ g++ '
cat >prog.cc <<EOF
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>
struct Base { virtual ~Base() = default; int b[3] = {1, 2, 3}; };
struct Derived : Base { std::string s = std::string(100, 120); double d[9] = {}; };
int main() {
  std::map<std::string, std::vector<int>> m;
  std::unordered_map<int, std::string> u;
  std::vector<std::unique_ptr<Base>> objs;
  for (int i = 0; i < 20000; i++) {
    m["key" + std::to_string(i % 997)].push_back(i);
    u[i % 5003] += std::to_string(i).substr(0, 3);
    objs.push_back(i % 2 ? std::unique_ptr<Base>(new Derived) : std::make_unique<Base>());
    if (objs.size() > 64) objs.erase(objs.begin(), objs.begin() + 32);
  }
  size_t total = 0, chars = 0;
  for (auto& kv : m) total += kv.second.size() * kv.first.size();
  for (auto& kv : u) chars += kv.second.size();
  std::printf("%zu %zu %zu %zu\n", m.size(), total, u.size(), chars);
}
EOF
g++ -std=c++17 -O2 -Wall -o prog prog.cc && sha256sum prog && ./prog'

# python3: json and sqlite3 modules, dicts, sorting, big strings.
check python3 python3 '
python3 - <<EOF
import hashlib, json, sqlite3
data = {"k%05d" % i: {"v": [i, i * i, str(i) * 3], "f": i / 7} for i in range(20000)}
text = json.dumps(data, sort_keys=True)
back = json.loads(text)
assert back == data
print(len(text), hashlib.sha256(text.encode()).hexdigest())
db = sqlite3.connect(":memory:")
db.execute("create table t (k text primary key, a int, b text)")
db.executemany("insert into t values (?, ?, ?)",
               ((k, v["v"][1] % 1000, v["v"][2]) for k, v in data.items()))
db.execute("create index ta on t (a)")
for row in db.execute("select a, count(*), min(k), max(length(b)) from t "
                      "group by a order by count(*) desc, a limit 5"):
    print(row)
print(db.execute("select sum(a), count(distinct b) from t").fetchone())
words = sorted(("%x" % (i * 2654435761 % 2**32)) for i in range(50000))
print(words[0], words[-1], len(set(words)))
EOF'

# git: a repository with a few commits, its log with stats, a repack and
# an integrity check.
check git git '
git init -q -b main repo && cd repo
for i in 1 2 3; do
  seq 1 $((i * 2000)) >numbers.txt
  printf "file %s\n" $(seq 1 $i) >list.txt
  mkdir -p dir$i && echo "content $i" >dir$i/f.txt
  git add -A && git commit -q -m "commit $i"
done
git rm -q list.txt && git commit -q -m "remove list"
git log --stat
git repack -adq && git fsck --no-progress 2>&1
git rev-parse HEAD'

# sqlite3 CLI: a recursive CTE, an index, a join and aggregates.
check sqlite3 sqlite3 '
sqlite3 db.sqlite <<EOF
create table n (i integer primary key, sq integer, s text);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 20000)
insert into n select x, x * x, printf("row %d", x) from c;
create index n_sq on n (sq % 97);
select count(*), sum(sq % 1000), max(length(s)) from n;
select sq % 97 as r, count(*) from n group by r order by count(*) desc, r limit 3;
select a.i, b.s from n a join n b on b.i = a.i * 2 where a.i % 5000 = 0;
vacuum;
pragma integrity_check;
EOF'

# bash: arrays, associative arrays, seq, sort, string work.
check bash bash '
a=()
for i in $(seq 1 20000); do a+=($(( (i * 7919) % 10007 ))); done
printf "%s\n" "${a[@]}" | sort -n | uniq -c | sort -rn | head -3
declare -A m
for x in "${a[@]:0:5000}"; do m[$x]=$(( ${m[$x]:-0} + 1 )); done
echo "${#a[@]} ${#m[@]}"
s=""; for i in $(seq 1 3000); do s+="$i,"; done; echo "${#s}"
seq 1 50000 | sort -r | sha256sum'

echo
if [[ ${#skipped[@]} -gt 0 ]]; then echo "skipped: ${skipped[*]}"; fi
if [[ $fails -gt 0 ]]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "all programs behaved identically under ${#libs[@]} hakmem variant(s)"
