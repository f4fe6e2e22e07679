#!/usr/bin/env bash
# Make a dataset available, or say exactly where to put it. Usage: scripts/get_data.sh DATASET
set -euo pipefail
dataset="${1:-fashion-mnist}"
case "$dataset" in
  fashion-mnist)
    dir=/usr/share/datasets/fashion-mnist
    if [ -f "$dir/train-images-idx3-ubyte.gz" ] || [ -f data/fashion-mnist/train-images-idx3-ubyte.gz ]; then
      exit 0
    fi
    echo "Installing Fashion-MNIST (Debian package dataset-fashion-mnist, ~30 MB)..."
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if command -v apt-get >/dev/null; then
      $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
    fi
    if [ ! -f "$dir/train-images-idx3-ubyte.gz" ]; then
      echo "Could not install dataset-fashion-mnist. Put the four *-ubyte.gz files from" >&2
      echo "https://github.com/zalandoresearch/fashion-mnist into data/fashion-mnist/." >&2
      exit 1
    fi ;;
  mnist)
    [ -f data/mnist/train-images-idx3-ubyte.gz ] || [ -f data/mnist/train-images-idx3-ubyte ] || {
      echo "MNIST not found: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz," >&2
      echo "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz into data/mnist/." >&2; exit 1; } ;;
  cifar10)
    [ -f data/cifar10/cifar-10-batches-py/data_batch_1 ] || {
      echo "CIFAR-10 not found: extract cifar-10-python.tar.gz" >&2
      echo "(https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) into data/cifar10/," >&2
      echo "giving data/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}." >&2; exit 1; } ;;
  svhn)
    [ -f data/svhn/train_32x32.mat ] && [ -f data/svhn/test_32x32.mat ] || {
      echo "SVHN not found: put train_32x32.mat and test_32x32.mat" >&2
      echo "(http://ufldl.stanford.edu/housenumbers/, format 2) into data/svhn/." >&2; exit 1; } ;;
  nus-wide)
    [ -f data/nus-wide/ImageList/Imagelist.txt ] || [ -f data/nus-wide/train.txt ] || {
      echo "NUS-WIDE not found under data/nus-wide/. Expected either the distributed layout" >&2
      echo "  data/nus-wide/ImageList/Imagelist.txt, data/nus-wide/Groundtruth/AllLabels/Labels_<concept>.txt," >&2
      echo "  data/nus-wide/NUS_WID_Tags/All_Tags.txt and the images under data/nus-wide/Flickr/<category>/<image>.jpg" >&2
      echo "or hashing list files data/nus-wide/{train,test}.txt ('path 0 1 0 ...' with 21 or 81 labels)." >&2
      echo "NUS-WIDE is not downloadable automatically; see README.md, 'Datasets'." >&2; exit 1; } ;;
  *)
    echo "unknown DATASET '$dataset' (known: fashion-mnist, mnist, cifar10, svhn, nus-wide); see README.md" >&2; exit 1 ;;
esac
