print("lb-bench-core")
