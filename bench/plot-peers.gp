# The plots of bench/report-peers.sh, drawn from the data files it
# writes.  Called as
#   gnuplot -e "data='DIR'; out='DIR'; rates='1 10'" plot-peers.gp
set terminal pngcairo noenhanced size 900,500 font "sans,10"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key below horizontal

set output out."/peers-throughput.png"
set title "fanout-one: frames delivered per second (higher is better)"
set ylabel "frames/s"
set yrange [0:*]
plot data."/throughput.dat" using 2:xtic(1) title "frames/s"

set output out."/peers-latency.png"
set title "fanout-one: delivery latency (lower is better)"
set ylabel "µs, log scale"
set logscale y
set yrange [1:*]
plot data."/latency.dat" using 2:xtic(1) title "p50", \
     '' using 3 title "p99", \
     '' using 4 title "p99.9"

set output out."/peers-cpu.png"
set title "server CPU per million delivered frames (lower is better)"
set ylabel "CPU seconds, log scale"
set yrange [0.01:*]
plot for [i=2:2+words(rates)] data."/cpu.dat" using i:xtic(1) \
     title (i == 2 ? "fanout-one" : sprintf("fanout-many, %s messages/s per room", word(rates, i - 2)))
