# Input of the demo flow solver, rendered from flow.in.tpl for one state.
mach = {mach}
alpha = {alpha}
iterations = {iterations}
