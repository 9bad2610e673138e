x = {x}
