"""The warpd_ros nodes, one module each: thin glue over warpd_core (`python -m warpd_ros.nodes.<name>`)."""
